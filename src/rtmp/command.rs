//! NetConnection and NetStream commands (RTMP 1.0 §7.2): encoding of what a publisher sends and
//! decoding of what a server answers.

use super::amf0::{self, Amf0Value};
use super::caps::ConnectCapabilities;
use super::error::{ProtocolError, Result};

/// Capabilities value of the legacy `connect` object (as FMLE sends).
const LEGACY_CAPABILITIES: f64 = 15.0;
/// `audioCodecs` of `connect`: every legacy codec flag (SUPPORT_SND_*).
const LEGACY_AUDIO_CODECS: f64 = 4071.0;
/// `videoCodecs` of `connect`: every legacy codec flag (SUPPORT_VID_*).
const LEGACY_VIDEO_CODECS: f64 = 252.0;
/// `videoFunction` of `connect`: SUPPORT_VID_CLIENT_SEEK.
const LEGACY_VIDEO_FUNCTION: f64 = 1.0;

/// One AMF0 command message: name, transaction id, command object and further arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Command name, e.g. `connect`, `_result`, `onStatus`.
    pub name: String,
    /// Transaction id (0 when no answer is expected).
    pub transaction_id: f64,
    /// The command object (often `Null`).
    pub command_object: Amf0Value,
    /// Arguments after the command object.
    pub args: Vec<Amf0Value>,
}

impl Command {
    /// A command with a `Null` command object.
    pub fn new(name: &str, transaction_id: f64, args: Vec<Amf0Value>) -> Self {
        Command {
            name: name.to_string(),
            transaction_id,
            command_object: Amf0Value::Null,
            args,
        }
    }

    /// The AMF0 body of a command message (type 20).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        amf0::encode(&Amf0Value::String(self.name.clone()), &mut out);
        amf0::encode(&Amf0Value::Number(self.transaction_id), &mut out);
        amf0::encode(&self.command_object, &mut out);
        for a in &self.args {
            amf0::encode(a, &mut out);
        }
        out
    }

    /// Decodes a command message body. For AMF3 command messages (type 17) pass the body
    /// without its leading format byte (see [`Command::decode_amf3_message`]).
    pub fn decode(body: &[u8]) -> Result<Self> {
        let mut values = amf0::decode_all(body)?.into_iter();
        let name = match values.next() {
            Some(Amf0Value::String(s)) | Some(Amf0Value::LongString(s)) => s,
            _ => {
                return Err(ProtocolError::MalformedMessage {
                    what: "command (no name)",
                }
                .into());
            }
        };
        let transaction_id = match values.next() {
            Some(Amf0Value::Number(n)) => n,
            None => 0.0,
            Some(_) => {
                return Err(ProtocolError::MalformedMessage {
                    what: "command (transaction id is not a number)",
                }
                .into());
            }
        };
        let command_object = values.next().unwrap_or(Amf0Value::Null);
        Ok(Command {
            name,
            transaction_id,
            command_object,
            args: values.collect(),
        })
    }

    /// Decodes an AMF3 command message (type 17): a format byte (0) followed by AMF0 values.
    pub fn decode_amf3_message(body: &[u8]) -> Result<Self> {
        match body.split_first() {
            Some((0, rest)) => Self::decode(rest),
            // Some peers omit the format byte.
            _ => Self::decode(body),
        }
    }

    /// The first object-like value among command object and arguments with a `code` field
    /// (the "information object" of `_result`, `_error` and `onStatus`).
    pub fn info_object(&self) -> Option<&Amf0Value> {
        std::iter::once(&self.command_object)
            .chain(self.args.iter())
            .find(|v| v.get("code").is_some())
    }

    /// `(level, code, description)` of the information object, empty strings where missing.
    pub fn status(&self) -> (String, String, String) {
        let info = self.info_object();
        let field = |k: &str| {
            info.and_then(|i| i.get(k))
                .and_then(Amf0Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        (field("level"), field("code"), field("description"))
    }
}

/// Parameters of the `connect` command.
#[derive(Debug, Clone)]
pub struct ConnectParams<'a> {
    /// Application name (with its query string, if any).
    pub app: &'a str,
    /// flashVer.
    pub flash_version: &'a str,
    /// tcUrl.
    pub tc_url: &'a str,
    /// Enhanced RTMP block appended after the legacy fields (may be empty).
    pub capabilities: &'a ConnectCapabilities,
    /// Extra AMF0 arguments after the command object.
    pub extra_args: &'a [Amf0Value],
}

/// `connect(command object, extra args...)`: legacy FMLE fields first, then the E-RTMP block,
/// so peers that do not know E-RTMP keep parsing it.
pub fn connect(transaction_id: f64, p: &ConnectParams<'_>) -> Command {
    let mut props: Vec<(String, Amf0Value)> = vec![
        ("app".into(), Amf0Value::String(p.app.into())),
        ("type".into(), Amf0Value::String("nonprivate".into())),
        ("flashVer".into(), Amf0Value::String(p.flash_version.into())),
        ("tcUrl".into(), Amf0Value::String(p.tc_url.into())),
        ("fpad".into(), Amf0Value::Boolean(false)),
        (
            "capabilities".into(),
            Amf0Value::Number(LEGACY_CAPABILITIES),
        ),
        ("audioCodecs".into(), Amf0Value::Number(LEGACY_AUDIO_CODECS)),
        ("videoCodecs".into(), Amf0Value::Number(LEGACY_VIDEO_CODECS)),
        (
            "videoFunction".into(),
            Amf0Value::Number(LEGACY_VIDEO_FUNCTION),
        ),
    ];
    props.extend(p.capabilities.to_properties());
    Command {
        name: "connect".into(),
        transaction_id,
        command_object: Amf0Value::Object(props),
        args: p.extra_args.to_vec(),
    }
}

/// `releaseStream(null, stream)` (FMLE; servers may answer `_error`, which is harmless).
pub fn release_stream(transaction_id: f64, stream: &str) -> Command {
    Command::new(
        "releaseStream",
        transaction_id,
        vec![Amf0Value::String(stream.into())],
    )
}

/// `FCPublish(null, stream)`.
pub fn fc_publish(transaction_id: f64, stream: &str) -> Command {
    Command::new(
        "FCPublish",
        transaction_id,
        vec![Amf0Value::String(stream.into())],
    )
}

/// `createStream(null)`.
pub fn create_stream(transaction_id: f64) -> Command {
    Command::new("createStream", transaction_id, vec![])
}

/// `publish(null, stream, type)`, sent on the new message stream.
pub fn publish(transaction_id: f64, stream: &str, publish_type: &str) -> Command {
    Command::new(
        "publish",
        transaction_id,
        vec![
            Amf0Value::String(stream.into()),
            Amf0Value::String(publish_type.into()),
        ],
    )
}

/// `FCUnpublish(null, stream)`.
pub fn fc_unpublish(transaction_id: f64, stream: &str) -> Command {
    Command::new(
        "FCUnpublish",
        transaction_id,
        vec![Amf0Value::String(stream.into())],
    )
}

/// `closeStream(null)`, sent on the publish message stream.
pub fn close_stream() -> Command {
    Command::new("closeStream", 0.0, vec![])
}

/// `deleteStream(null, stream_id)`.
pub fn delete_stream(transaction_id: f64, stream_id: u32) -> Command {
    Command::new(
        "deleteStream",
        transaction_id,
        vec![Amf0Value::Number(f64::from(stream_id))],
    )
}

/// Body of `@setDataFrame("onMetaData", metadata)` (AMF0 data message, type 18).
pub fn set_data_frame(metadata: &Amf0Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    amf0::encode(&Amf0Value::String("@setDataFrame".into()), &mut out);
    amf0::encode(&Amf0Value::String("onMetaData".into()), &mut out);
    amf0::encode(metadata, &mut out);
    out
}

/// Deepest object nesting accepted in [`parse_connect_args`].
const MAX_ARG_DEPTH: usize = 16;

/// Parses extra `connect` arguments written as FFmpeg's `rtmp_conn` option: space-separated
/// items `TYPE:VALUE` with `B` boolean (0/1), `N` number, `S` string, `Z` null and `O` object
/// (`O:1` begins, `O:0` ends); items inside an object are named by prefixing the type with `N`
/// and the name before the value: `NS:name:value`, `NN:count:3`, `NB:flag:1`, `NO:sub:1`.
/// Example: `"S:token B:1 O:1 NS:user:bob NN:level:2 O:0"`.
pub fn parse_connect_args(text: &str) -> std::result::Result<Vec<Amf0Value>, String> {
    // Open objects: (name under which the object goes into its parent, properties).
    type Open = (Option<String>, Vec<(String, Amf0Value)>);
    let mut stack: Vec<Open> = Vec::new();
    let mut top = Vec::new();
    for item in text.split_whitespace() {
        let (kind, rest) = item
            .split_once(':')
            .ok_or_else(|| format!("'{item}' is not TYPE:VALUE"))?;
        let (named, kind) = match kind.strip_prefix('N') {
            Some(k) if !k.is_empty() => (true, k),
            _ => (false, kind),
        };
        let (name, value) = if named {
            let (n, v) = rest
                .split_once(':')
                .ok_or_else(|| format!("'{item}' is not NTYPE:NAME:VALUE"))?;
            (Some(n.to_string()), v)
        } else {
            (None, rest)
        };
        if named && stack.is_empty() {
            return Err(format!(
                "'{item}': named items belong inside an object (O:1 ... O:0)"
            ));
        }
        let parsed = match kind {
            "B" => match value {
                "0" => Amf0Value::Boolean(false),
                "1" => Amf0Value::Boolean(true),
                _ => return Err(format!("'{item}': a boolean is 0 or 1")),
            },
            "N" => Amf0Value::Number(
                value
                    .parse::<f64>()
                    .map_err(|_| format!("'{item}': not a number"))?,
            ),
            "S" => Amf0Value::String(value.to_string()),
            "Z" => Amf0Value::Null,
            "O" if value == "1" => {
                if stack.len() >= MAX_ARG_DEPTH {
                    return Err(format!("objects nested deeper than {MAX_ARG_DEPTH}"));
                }
                stack.push((name, Vec::new()));
                continue;
            }
            "O" if value == "0" => {
                let (obj_name, props) = stack
                    .pop()
                    .ok_or_else(|| format!("'{item}' closes an object that was never opened"))?;
                let obj = Amf0Value::Object(props);
                match (stack.last_mut(), obj_name) {
                    (Some((_, parent)), Some(n)) => parent.push((n, obj)),
                    (Some(_), None) => {
                        return Err("an object inside an object needs a name (NO:name:1)".into());
                    }
                    (None, _) => top.push(obj),
                }
                continue;
            }
            _ => {
                return Err(format!(
                    "'{item}': unknown type '{kind}' (use B, N, S, Z or O)"
                ));
            }
        };
        match (stack.last_mut(), name) {
            (Some((_, props)), Some(n)) => props.push((n, parsed)),
            (Some(_), None) => {
                return Err(format!(
                    "'{item}': items inside an object need a name (N{kind}:name:value)"
                ));
            }
            (None, _) => top.push(parsed),
        }
    }
    if !stack.is_empty() {
        return Err("an object is not closed (missing O:0)".into());
    }
    Ok(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_args_follow_ffmpeg_rtmp_conn_syntax() {
        let v = parse_connect_args("S:tok B:1 N:2.5 Z: O:1 NS:user:bob NO:sub:1 NB:f:0 O:0 O:0")
            .unwrap();
        assert_eq!(
            v,
            vec![
                Amf0Value::String("tok".into()),
                Amf0Value::Boolean(true),
                Amf0Value::Number(2.5),
                Amf0Value::Null,
                Amf0Value::object([
                    ("user", Amf0Value::String("bob".into())),
                    ("sub", Amf0Value::object([("f", Amf0Value::Boolean(false))])),
                ]),
            ]
        );
        assert_eq!(parse_connect_args("  ").unwrap(), vec![]);
        for bad in [
            "X:1",
            "B:2",
            "N:abc",
            "O:1",
            "O:0",
            "NS:a:b",
            "O:1 S:x O:0",
            "S",
        ] {
            assert!(parse_connect_args(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connect_keeps_legacy_fields_first_and_appends_caps() {
        let caps = ConnectCapabilities::publisher_default();
        let cmd = connect(
            1.0,
            &ConnectParams {
                app: "live",
                flash_version: "FMLE/3.0",
                tc_url: "rtmp://h:1935/live",
                capabilities: &caps,
                extra_args: &[Amf0Value::String("token".into())],
            },
        );
        let back = Command::decode(&cmd.encode()).unwrap();
        assert_eq!(back, cmd);
        let props = back.command_object.properties().unwrap();
        let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
        let vf = keys.iter().position(|k| *k == "videoFunction").unwrap();
        let fl = keys.iter().position(|k| *k == "fourCcList").unwrap();
        assert!(
            vf < fl,
            "E-RTMP fields must follow the legacy ones: {keys:?}"
        );
        assert_eq!(keys[0], "app");
        assert_eq!(back.args, vec![Amf0Value::String("token".into())]);
    }

    #[test]
    fn status_reads_info_object() {
        let cmd = Command {
            name: "onStatus".into(),
            transaction_id: 0.0,
            command_object: Amf0Value::Null,
            args: vec![Amf0Value::object([
                ("level", Amf0Value::String("error".into())),
                (
                    "code",
                    Amf0Value::String("NetStream.Publish.BadName".into()),
                ),
                (
                    "description",
                    Amf0Value::String("Already publishing".into()),
                ),
            ])],
        };
        let (l, c, d) = Command::decode(&cmd.encode()).unwrap().status();
        assert_eq!(
            (l.as_str(), c.as_str(), d.as_str()),
            ("error", "NetStream.Publish.BadName", "Already publishing")
        );
    }

    #[test]
    fn amf3_command_skips_format_byte() {
        let mut body = vec![0u8];
        body.extend(create_stream(4.0).encode());
        assert_eq!(
            Command::decode_amf3_message(&body).unwrap(),
            create_stream(4.0)
        );
        assert!(Command::decode(&[0x05]).is_err());
    }
}
