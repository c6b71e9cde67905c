//! Enhanced RTMP `connect` capabilities (E-RTMP v1 §"Enhancing NetConnection connect Command",
//! v2 `capsEx`): what a client advertises after the legacy command-object fields, and what the
//! server answers in `_result`.

use super::amf0::Amf0Value;

/// `capsEx` bit: the peer supports `NetConnection.Connect.ReconnectRequest`.
pub const CAPS_EX_RECONNECT: u32 = 0x01;
/// `capsEx` bit: multitrack audio/video.
pub const CAPS_EX_MULTITRACK: u32 = 0x02;
/// `capsEx` bit: the ModEx packet type.
pub const CAPS_EX_MODEX: u32 = 0x04;
/// `capsEx` bit: nanosecond timestamp offsets (through ModEx).
pub const CAPS_EX_TIMESTAMP_NANO_OFFSET: u32 = 0x08;

/// FourCC info-map bit: can decode.
pub const FOURCC_CAN_DECODE: u32 = 0x01;
/// FourCC info-map bit: can encode.
pub const FOURCC_CAN_ENCODE: u32 = 0x02;
/// FourCC info-map bit: can forward.
pub const FOURCC_CAN_FORWARD: u32 = 0x04;

/// Largest number of entries taken from a server's list or map (the rest is ignored).
const MAX_ENTRIES: usize = 256;

/// The Enhanced RTMP capability block of `connect` / `_result(connect)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectCapabilities {
    /// `fourCcList`: FourCCs (e.g. `"hvc1"`, `"av01"`, or `"*"`) the peer supports.
    pub four_cc_list: Vec<String>,
    /// `videoFourCcInfoMap`: FourCC (or `"*"`) → CanDecode | CanEncode | CanForward mask.
    pub video_four_cc_info_map: Vec<(String, u32)>,
    /// `audioFourCcInfoMap`: FourCC (or `"*"`) → CanDecode | CanEncode | CanForward mask.
    pub audio_four_cc_info_map: Vec<(String, u32)>,
    /// `capsEx` bitfield ([`CAPS_EX_RECONNECT`], ...).
    pub caps_ex: Option<u32>,
    /// `objectEncoding` (0 = AMF0, 3 = AMF3).
    pub object_encoding: Option<f64>,
}

impl ConnectCapabilities {
    /// True when no Enhanced RTMP field is set (a pre-E-RTMP peer). `objectEncoding` does not
    /// count: legacy servers send it too.
    pub fn is_empty(&self) -> bool {
        self.four_cc_list.is_empty()
            && self.video_four_cc_info_map.is_empty()
            && self.audio_four_cc_info_map.is_empty()
            && self.caps_ex.is_none()
    }

    /// The block a publisher of this crate advertises by default: AVC/HEVC/AV1 video and AAC/Opus
    /// audio it can encode, and the v2 Reconnect request.
    pub fn publisher_default() -> Self {
        let enc = FOURCC_CAN_ENCODE;
        ConnectCapabilities {
            four_cc_list: vec!["avc1".into(), "hvc1".into(), "av01".into()],
            video_four_cc_info_map: vec![
                ("avc1".into(), enc),
                ("hvc1".into(), enc),
                ("av01".into(), enc),
            ],
            audio_four_cc_info_map: vec![("mp4a".into(), enc), ("Opus".into(), enc)],
            caps_ex: Some(CAPS_EX_RECONNECT),
            object_encoding: None,
        }
    }

    /// True when `capsEx` has every bit of `bit`.
    pub fn has_caps_ex(&self, bit: u32) -> bool {
        self.caps_ex.is_some_and(|c| c & bit == bit)
    }

    /// The properties to append to the `connect` command object, in the documented order.
    pub fn to_properties(&self) -> Vec<(String, Amf0Value)> {
        let mut props = Vec::new();
        if !self.four_cc_list.is_empty() {
            props.push((
                "fourCcList".to_string(),
                Amf0Value::StrictArray(
                    self.four_cc_list
                        .iter()
                        .map(|s| Amf0Value::String(s.clone()))
                        .collect(),
                ),
            ));
        }
        let map = |m: &[(String, u32)]| {
            Amf0Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), Amf0Value::Number(f64::from(*v))))
                    .collect(),
            )
        };
        if !self.video_four_cc_info_map.is_empty() {
            props.push((
                "videoFourCcInfoMap".into(),
                map(&self.video_four_cc_info_map),
            ));
        }
        if !self.audio_four_cc_info_map.is_empty() {
            props.push((
                "audioFourCcInfoMap".into(),
                map(&self.audio_four_cc_info_map),
            ));
        }
        if let Some(c) = self.caps_ex {
            props.push(("capsEx".into(), Amf0Value::Number(f64::from(c))));
        }
        if let Some(e) = self.object_encoding {
            props.push(("objectEncoding".into(), Amf0Value::Number(e)));
        }
        props
    }

    /// Reads the capability fields from a `_result(connect)` properties or information object
    /// (unknown keys are ignored, malformed entries skipped, sizes bounded).
    pub fn from_properties(props: &[(String, Amf0Value)]) -> Self {
        let mut caps = ConnectCapabilities::default();
        for (key, value) in props {
            match key.as_str() {
                "fourCcList" => {
                    if let Some(items) = value_items(value) {
                        caps.four_cc_list = items
                            .iter()
                            .filter_map(|v| match v {
                                Amf0Value::String(s) | Amf0Value::LongString(s) => Some(s.clone()),
                                _ => None,
                            })
                            .take(MAX_ENTRIES)
                            .collect();
                    }
                }
                "videoFourCcInfoMap" => caps.video_four_cc_info_map = info_map(value),
                "audioFourCcInfoMap" => caps.audio_four_cc_info_map = info_map(value),
                "capsEx" => caps.caps_ex = number(value).map(|n| n as u32),
                "objectEncoding" => caps.object_encoding = number(value),
                _ => {}
            }
        }
        caps
    }
}

fn number(v: &Amf0Value) -> Option<f64> {
    match v {
        Amf0Value::Number(n) if n.is_finite() && *n >= 0.0 => Some(*n),
        _ => None,
    }
}

fn value_items(v: &Amf0Value) -> Option<Vec<Amf0Value>> {
    match v {
        Amf0Value::StrictArray(items) => Some(items.clone()),
        // Some servers send lists as ECMA arrays keyed "0", "1", ...
        Amf0Value::EcmaArray(props) | Amf0Value::Object(props) => {
            Some(props.iter().map(|(_, v)| v.clone()).collect())
        }
        _ => None,
    }
}

fn info_map(v: &Amf0Value) -> Vec<(String, u32)> {
    match v {
        Amf0Value::Object(props)
        | Amf0Value::EcmaArray(props)
        | Amf0Value::TypedObject {
            properties: props, ..
        } => props
            .iter()
            .filter_map(|(k, v)| number(v).map(|n| (k.clone(), n as u32)))
            .take(MAX_ENTRIES)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_properties() {
        let mut c = ConnectCapabilities::publisher_default();
        c.object_encoding = Some(0.0);
        let back = ConnectCapabilities::from_properties(&c.to_properties());
        assert_eq!(back, c);
        assert!(back.has_caps_ex(CAPS_EX_RECONNECT));
        assert!(!back.has_caps_ex(CAPS_EX_MULTITRACK));
    }

    #[test]
    fn empty_when_server_sends_none() {
        let props = vec![
            (
                "fmsVer".to_string(),
                Amf0Value::String("FMS/3,0,1,123".into()),
            ),
            ("capabilities".to_string(), Amf0Value::Number(31.0)),
        ];
        assert!(ConnectCapabilities::from_properties(&props).is_empty());
    }

    #[test]
    fn wildcard_and_ecma_forms_are_accepted() {
        let props = vec![
            (
                "fourCcList".to_string(),
                Amf0Value::EcmaArray(vec![("0".into(), Amf0Value::String("*".into()))]),
            ),
            (
                "videoFourCcInfoMap".to_string(),
                Amf0Value::EcmaArray(vec![("*".into(), Amf0Value::Number(4.0))]),
            ),
            ("capsEx".to_string(), Amf0Value::Number(15.0)),
        ];
        let c = ConnectCapabilities::from_properties(&props);
        assert_eq!(c.four_cc_list, vec!["*".to_string()]);
        assert_eq!(c.video_four_cc_info_map, vec![("*".to_string(), 4)]);
        assert!(c.has_caps_ex(CAPS_EX_RECONNECT | CAPS_EX_TIMESTAMP_NANO_OFFSET));
    }
}
