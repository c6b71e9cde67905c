//! Enhanced RTMP `connect` capabilities (E-RTMP v1 §"Enhancing NetConnection connect Command",
//! v2 `capsEx`): what a client advertises after the legacy command-object fields, what the
//! server answers in `_result`, and the judgement of that answer against what a publish will
//! send ([`Wanted`], [`negotiate`]).
//!
//! # Negotiation rules
//!
//! What `connect` advertises ([`Wanted::capabilities`]):
//! - `fourCcList`: every codec the publish sends, video first, legacy H.264/AAC on track 0
//!   included. The spec defines the list as the codecs the client supports, and a server that
//!   routes or transcodes by codec learns the whole set; servers that do not know Enhanced
//!   RTMP ignore it. FFmpeg sends exactly this list (and nothing else) when `-rtmp_enhanced_codecs`
//!   names the codecs; it accepts avc1 and mp4a there too.
//! - `videoFourCcInfoMap` / `audioFourCcInfoMap`: the same codecs per kind, each with
//!   `CanEncode` (the v2 form the spec recommends to clients; a publisher produces the codec,
//!   it neither decodes nor forwards it).
//! - `capsEx`: Reconnect always (the core reports `NetConnection.Connect.ReconnectRequest` and
//!   the callers follow it); Multitrack when a track id >= 1 is sent; ModEx and
//!   TimestampNanoOffset when the publish would send nanosecond offsets ([`Wanted::nano_offsets`]):
//!   the client states the features it uses, the server's answer decides.
//!
//! How the server's `_result` is judged ([`negotiate`]), first refusal wins:
//! 1. No Enhanced RTMP field at all (FFmpeg, nginx-rtmp, node-media-server, SRS, MediaMTX):
//!    accepted; [`Negotiated::info`] says what is sent unconfirmed.
//! 2. Tracks >= 1 and `capsEx` present without Multitrack: refused ([`Refusal::Multitrack`]).
//!    No `capsEx` at all: multitrack is sent unconfirmed.
//! 3. Every codec sent in an enhanced form (all but legacy H.264/AAC/MP3 on track 0, which every
//!    server takes) must be accepted when the server states codecs for its kind: it is accepted
//!    when `fourCcList` holds its FourCC or `"*"`, or when the kind's info map gives it (its own
//!    key's flags ORed with the `"*"` key's) CanDecode or CanForward; CanEncode alone says the
//!    server can produce the codec, not take it. The server states codecs for a kind when it
//!    sends a non-empty `fourCcList` (the list has no kinds) or a non-empty info map for that
//!    kind; otherwise the codec is sent unconfirmed. Otherwise: [`Refusal::Codec`].
//! 4. ModEx TimestampOffsetNano is sent only when the server's `capsEx` has both ModEx and
//!    TimestampNanoOffset ([`Negotiated::send_mod_ex_nanos`]): some servers (MediaMTX) drop the
//!    connection on a ModEx packet they do not expect.

use super::amf0::Amf0Value;
use crate::codec::flv;
use crate::codec::{Codec, MediaKind};

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
/// Largest number of the server's FourCCs quoted in a refusal.
const MAX_LISTED: usize = 16;

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

impl ConnectCapabilities {
    /// The info map of `kind` (`videoFourCcInfoMap` or `audioFourCcInfoMap`).
    pub fn info_map(&self, kind: MediaKind) -> &[(String, u32)] {
        match kind {
            MediaKind::Video => &self.video_four_cc_info_map,
            MediaKind::Audio => &self.audio_four_cc_info_map,
        }
    }

    /// True when the block says which codecs of `kind` the peer takes (a non-empty
    /// `fourCcList`, which has no kinds, or a non-empty info map of `kind`).
    pub fn states_codecs(&self, kind: MediaKind) -> bool {
        !self.four_cc_list.is_empty() || !self.info_map(kind).is_empty()
    }

    /// The info-map flags of `fourcc` in the map of `kind`: its own entry ORed with the `"*"`
    /// entry (the spec's example: `"*": CanForward` plus `"vp09": CanDecode | CanEncode`
    /// means VP9 is decoded, encoded and forwarded).
    pub fn info_flags(&self, kind: MediaKind, fourcc: &str) -> u32 {
        self.info_map(kind)
            .iter()
            .filter(|(k, _)| k == fourcc || k == FOURCC_WILDCARD)
            .fold(0, |acc, (_, v)| acc | v)
    }

    /// True when this (server) block accepts `codec` from a publisher: `fourCcList` holds its
    /// FourCC or `"*"`, or the info map gives it CanDecode or CanForward.
    pub fn accepts(&self, codec: Codec) -> bool {
        let fourcc = codec.fourcc_str();
        self.four_cc_list
            .iter()
            .any(|f| f == fourcc || f == FOURCC_WILDCARD)
            || self.info_flags(codec.kind(), fourcc) & (FOURCC_CAN_DECODE | FOURCC_CAN_FORWARD) != 0
    }

    /// The FourCCs of `kind` this (server) block accepts, for messages: known FourCCs of that
    /// kind from `fourCcList`, then info-map keys with CanDecode or CanForward; printable
    /// entries of at most 4 characters only, without duplicates, at most 16.
    pub fn accepted_fourccs(&self, kind: MediaKind) -> Vec<String> {
        let known: &[flv::FourCc] = match kind {
            MediaKind::Video => &flv::VIDEO_FOURCCS,
            MediaKind::Audio => &flv::AUDIO_FOURCCS,
        };
        let from_list = self
            .four_cc_list
            .iter()
            .filter(|f| known.iter().any(|k| k.as_slice() == f.as_bytes()));
        let from_map = self
            .info_map(kind)
            .iter()
            .filter(|(k, _)| {
                k != FOURCC_WILDCARD
                    && self.info_flags(kind, k) & (FOURCC_CAN_DECODE | FOURCC_CAN_FORWARD) != 0
            })
            .map(|(k, _)| k);
        let mut out: Vec<String> = Vec::new();
        for f in from_list.chain(from_map) {
            let printable =
                (1..=4).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
            if printable && !out.contains(f) {
                out.push(f.clone());
                if out.len() == MAX_LISTED {
                    break;
                }
            }
        }
        out
    }
}

/// The wildcard FourCC: any codec.
pub const FOURCC_WILDCARD: &str = "*";

/// One track a publish will send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedTrack {
    /// Its codec.
    pub codec: Codec,
    /// Its track id (0: the `sink`/`audio` pads; 1..=255: `video_N`/`audio_N`).
    pub track_id: u8,
    /// Sent in the legacy FLV form (track 0 only: H.264, AAC, MP3 at a legacy rate), which
    /// needs nothing from the server.
    pub legacy: bool,
}

/// What a publish will send: its tracks, and whether it would send ModEx
/// TimestampOffsetNano. [`Wanted::capabilities`] is what `connect` advertises for it, and
/// [`negotiate`] judges the server's answer against it.
///
/// ```
/// use gstrtmpclient::codec::Codec;
/// use gstrtmpclient::rtmp::caps::{negotiate, ConnectCapabilities, Wanted};
///
/// let wanted = Wanted::new().track(Codec::H265, 0).track(Codec::Aac, 0);
/// // A server that answers without Enhanced RTMP fields gets the stream anyway.
/// let n = negotiate(&ConnectCapabilities::default(), &wanted).unwrap();
/// assert_eq!(
///     n.info().as_deref(),
///     Some("server did not say which codecs it accepts; sending HEVC (hvc1) anyway.")
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The tracks, in the order they were added.
    pub tracks: Vec<WantedTrack>,
    /// The publish would send ModEx TimestampOffsetNano (the sub-millisecond part of each
    /// timestamp) where the server takes it; advertised as capsEx ModEx | TimestampNanoOffset.
    pub nano_offsets: bool,
}

impl Wanted {
    /// Nothing to send yet, no nanosecond offsets.
    pub fn new() -> Self {
        Wanted::default()
    }

    /// Adds a track of `codec` with id `track_id`; on track 0, H.264 and AAC are legacy
    /// ([`Codec::legacy_on_track_0`]). For MP3 at a legacy rate use [`Wanted::legacy_track`].
    pub fn track(mut self, codec: Codec, track_id: u8) -> Self {
        self.tracks.push(WantedTrack {
            codec,
            track_id,
            legacy: track_id == 0 && codec.legacy_on_track_0(),
        });
        self
    }

    /// Adds `codec` on track 0 in the legacy FLV form (e.g. MP3 at 44.1 kHz).
    pub fn legacy_track(mut self, codec: Codec) -> Self {
        self.tracks.push(WantedTrack {
            codec,
            track_id: 0,
            legacy: true,
        });
        self
    }

    /// Sets [`Wanted::nano_offsets`].
    pub fn with_nano_offsets(mut self, on: bool) -> Self {
        self.nano_offsets = on;
        self
    }

    /// True when a track id >= 1 is sent (Multitrack packets).
    pub fn multitrack(&self) -> bool {
        self.tracks.iter().any(|t| t.track_id >= 1)
    }

    /// The distinct codecs of `kind`, in track order.
    pub fn codecs(&self, kind: MediaKind) -> Vec<Codec> {
        let mut out = Vec::new();
        for t in self.tracks.iter().filter(|t| t.codec.kind() == kind) {
            if !out.contains(&t.codec) {
                out.push(t.codec);
            }
        }
        out
    }

    /// The distinct codecs sent in an enhanced form (FourCC), in track order: what the server
    /// has to accept.
    pub fn enhanced_codecs(&self) -> Vec<Codec> {
        let mut out = Vec::new();
        for t in self.tracks.iter().filter(|t| !t.legacy) {
            if !out.contains(&t.codec) {
                out.push(t.codec);
            }
        }
        out
    }

    /// The block `connect` advertises for this publish (see the module documentation).
    pub fn capabilities(&self) -> ConnectCapabilities {
        let video = self.codecs(MediaKind::Video);
        let audio = self.codecs(MediaKind::Audio);
        let map = |codecs: &[Codec]| {
            codecs
                .iter()
                .map(|c| (c.fourcc_str().to_string(), FOURCC_CAN_ENCODE))
                .collect()
        };
        let mut caps_ex = CAPS_EX_RECONNECT;
        if self.multitrack() {
            caps_ex |= CAPS_EX_MULTITRACK;
        }
        if self.nano_offsets {
            caps_ex |= CAPS_EX_MODEX | CAPS_EX_TIMESTAMP_NANO_OFFSET;
        }
        ConnectCapabilities {
            four_cc_list: video
                .iter()
                .chain(&audio)
                .map(|c| c.fourcc_str().to_string())
                .collect(),
            video_four_cc_info_map: map(&video),
            audio_four_cc_info_map: map(&audio),
            caps_ex: Some(caps_ex),
            object_encoding: None,
        }
    }
}

/// How the server's answer relates to what is sent (when nothing is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is legacy FLV on track 0: nothing to ask the server.
    LegacyOnly,
    /// The server's answer has no Enhanced RTMP field: the stream is sent unconfirmed.
    ServerSilent,
    /// The server answered with Enhanced RTMP fields, but not about everything that is sent
    /// ([`Negotiated::unconfirmed`], [`Negotiated::multitrack_unconfirmed`]).
    PartlyConfirmed,
    /// The server's answer accepts everything that is sent.
    Confirmed,
}

/// The result of a negotiation that refused nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// How the answer relates to what is sent.
    pub outcome: Outcome,
    /// Enhanced codecs that are sent although the server did not say it takes them.
    pub unconfirmed: Vec<Codec>,
    /// Tracks >= 1 are sent although the server sent no `capsEx`.
    pub multitrack_unconfirmed: bool,
    /// Send ModEx TimestampOffsetNano: wanted, and the server advertised ModEx and
    /// TimestampNanoOffset. ModEx exists only in the enhanced forms: legacy tracks never
    /// carry it.
    pub send_mod_ex_nanos: bool,
}

impl Negotiated {
    /// One sentence for an INFO message when something is sent unconfirmed, e.g. "server did
    /// not say which codecs it accepts; sending HEVC (hvc1) anyway."; `None` otherwise.
    pub fn info(&self) -> Option<String> {
        let codecs: Vec<String> = self.unconfirmed.iter().map(|c| describe(*c)).collect();
        match self.outcome {
            Outcome::LegacyOnly | Outcome::Confirmed => None,
            Outcome::ServerSilent => {
                let mut what = codecs;
                if self.multitrack_unconfirmed {
                    what.push("multitrack (tracks 1 and above)".into());
                }
                Some(format!(
                    "server did not say which codecs it accepts; sending {} anyway.",
                    list(what)
                ))
            }
            Outcome::PartlyConfirmed => {
                let mut parts = Vec::new();
                if !codecs.is_empty() {
                    parts.push(format!(
                        "server did not say whether it accepts {}; sending {} anyway",
                        list(codecs),
                        if self.unconfirmed.len() == 1 {
                            "it"
                        } else {
                            "them"
                        }
                    ));
                }
                if self.multitrack_unconfirmed {
                    parts.push(
                        "server did not say whether it accepts multitrack (no capsEx); sending \
                         tracks 1 and above anyway"
                            .to_string(),
                    );
                }
                Some(format!("{}.", parts.join("; ")))
            }
        }
    }
}

/// Why the server's answer excludes what is to be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The server states the codecs it takes, and `codec` is not among them.
    #[error("{}", codec_refusal(*.codec, *.track_id, .listed))]
    Codec {
        /// The codec that is refused.
        codec: Codec,
        /// The first track that sends it.
        track_id: u8,
        /// The FourCCs of the codec's kind the server accepts ([`ConnectCapabilities::accepted_fourccs`]).
        listed: Vec<String>,
    },
    /// Tracks >= 1 are to be sent, and the server's `capsEx` lacks Multitrack.
    #[error(
        "server does not accept multitrack (capsEx 0x{caps_ex:02x}); it does not set the \
         Multitrack bit (0x02), so tracks 1 and above cannot be sent; remove the video_N/audio_N \
         pads (send track 0 only), or publish to a server that accepts multitrack."
    )]
    Multitrack {
        /// The server's `capsEx`.
        caps_ex: u32,
    },
}

fn codec_refusal(codec: Codec, track_id: u8, listed: &[String]) -> String {
    let on_track = if track_id >= 1 {
        format!(" on track {track_id}")
    } else {
        String::new()
    };
    let head = format!("server does not accept {}{on_track}", describe(codec));
    if listed.is_empty() {
        let fallback = match codec.kind() {
            MediaKind::Video => Codec::H264,
            MediaKind::Audio => Codec::Aac,
        };
        format!(
            "{head}; it lists no {} codec; send {} on track 0, or publish to a server that \
             accepts {}.",
            codec.kind().name(),
            fallback.name(),
            codec.name()
        )
    } else {
        format!(
            "{head}; it lists {}; send a codec it lists, or publish to a server that accepts {}.",
            listed.join(", "),
            codec.name()
        )
    }
}

/// `HEVC (hvc1)`.
fn describe(codec: Codec) -> String {
    format!("{} ({})", codec.name(), codec.fourcc_str())
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: Vec<String>) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Judges the server's `_result(connect)` block against what is to be sent (rules in the
/// module documentation). `Err` means the publish must not go on: nothing has been sent yet
/// that the server would take as media.
pub fn negotiate(server: &ConnectCapabilities, wanted: &Wanted) -> Result<Negotiated, Refusal> {
    let enhanced = wanted.enhanced_codecs();
    let multitrack = wanted.multitrack();
    let send_mod_ex_nanos =
        wanted.nano_offsets && server.has_caps_ex(CAPS_EX_MODEX | CAPS_EX_TIMESTAMP_NANO_OFFSET);
    if enhanced.is_empty() && !multitrack {
        return Ok(Negotiated {
            outcome: Outcome::LegacyOnly,
            unconfirmed: Vec::new(),
            multitrack_unconfirmed: false,
            send_mod_ex_nanos,
        });
    }
    if server.is_empty() {
        return Ok(Negotiated {
            outcome: Outcome::ServerSilent,
            unconfirmed: enhanced,
            multitrack_unconfirmed: multitrack,
            send_mod_ex_nanos,
        });
    }
    if let Some(caps_ex) = server
        .caps_ex
        .filter(|c| multitrack && c & CAPS_EX_MULTITRACK == 0)
    {
        return Err(Refusal::Multitrack { caps_ex });
    }
    let mut unconfirmed = Vec::new();
    for track in wanted.tracks.iter().filter(|t| !t.legacy) {
        let codec = track.codec;
        if !server.states_codecs(codec.kind()) {
            if !unconfirmed.contains(&codec) {
                unconfirmed.push(codec);
            }
        } else if !server.accepts(codec) {
            return Err(Refusal::Codec {
                codec,
                track_id: track.track_id,
                listed: server.accepted_fourccs(codec.kind()),
            });
        }
    }
    let multitrack_unconfirmed = multitrack && server.caps_ex.is_none();
    let outcome = if unconfirmed.is_empty() && !multitrack_unconfirmed {
        Outcome::Confirmed
    } else {
        Outcome::PartlyConfirmed
    };
    Ok(Negotiated {
        outcome,
        unconfirmed,
        multitrack_unconfirmed,
        send_mod_ex_nanos,
    })
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

    fn server(list: &[&str], video: &[(&str, u32)], audio: &[(&str, u32)]) -> ConnectCapabilities {
        let map = |m: &[(&str, u32)]| m.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        ConnectCapabilities {
            four_cc_list: list.iter().map(|s| s.to_string()).collect(),
            video_four_cc_info_map: map(video),
            audio_four_cc_info_map: map(audio),
            caps_ex: None,
            object_encoding: None,
        }
    }

    fn with_caps_ex(mut c: ConnectCapabilities, caps_ex: u32) -> ConnectCapabilities {
        c.caps_ex = Some(caps_ex);
        c
    }

    fn hevc_aac() -> Wanted {
        Wanted::new().track(Codec::H265, 0).track(Codec::Aac, 0)
    }

    #[test]
    fn advertised_block_lists_what_is_sent() {
        let c = hevc_aac().capabilities();
        assert_eq!(c.four_cc_list, ["hvc1", "mp4a"]);
        assert_eq!(
            c.video_four_cc_info_map,
            [("hvc1".to_string(), FOURCC_CAN_ENCODE)]
        );
        assert_eq!(
            c.audio_four_cc_info_map,
            [("mp4a".to_string(), FOURCC_CAN_ENCODE)]
        );
        assert_eq!(c.caps_ex, Some(CAPS_EX_RECONNECT));

        // Video first, each codec once, Multitrack for track ids >= 1.
        let w = Wanted::new()
            .track(Codec::Opus, 1)
            .track(Codec::H264, 0)
            .track(Codec::H264, 1)
            .track(Codec::Aac, 0);
        let c = w.capabilities();
        assert_eq!(c.four_cc_list, ["avc1", "Opus", "mp4a"]);
        assert_eq!(c.caps_ex, Some(CAPS_EX_RECONNECT | CAPS_EX_MULTITRACK));
        assert_eq!(c.audio_four_cc_info_map.len(), 2);

        let c = hevc_aac().with_nano_offsets(true).capabilities();
        assert_eq!(
            c.caps_ex,
            Some(CAPS_EX_RECONNECT | CAPS_EX_MODEX | CAPS_EX_TIMESTAMP_NANO_OFFSET)
        );

        // Nothing to send yet: only the Reconnect bit.
        let c = Wanted::new().capabilities();
        assert!(c.four_cc_list.is_empty() && c.video_four_cc_info_map.is_empty());
        assert_eq!(c.to_properties().len(), 1);
    }

    #[test]
    fn advertised_block_is_a_strict_array_and_objects_on_the_wire() {
        let props = hevc_aac().capabilities().to_properties();
        let names: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "fourCcList",
                "videoFourCcInfoMap",
                "audioFourCcInfoMap",
                "capsEx"
            ]
        );
        assert_eq!(
            props[0].1,
            Amf0Value::StrictArray(vec![
                Amf0Value::String("hvc1".into()),
                Amf0Value::String("mp4a".into())
            ])
        );
        assert_eq!(
            props[1].1,
            Amf0Value::Object(vec![("hvc1".into(), Amf0Value::Number(2.0))])
        );
    }

    #[test]
    fn a_silent_server_gets_the_stream_with_one_info() {
        let n = negotiate(&ConnectCapabilities::default(), &hevc_aac()).unwrap();
        assert_eq!(n.outcome, Outcome::ServerSilent);
        assert_eq!(n.unconfirmed, [Codec::H265]);
        assert!(!n.send_mod_ex_nanos);
        assert_eq!(
            n.info().unwrap(),
            "server did not say which codecs it accepts; sending HEVC (hvc1) anyway."
        );

        // objectEncoding alone (what FFmpeg and nginx answer) is no Enhanced RTMP field.
        let legacy = ConnectCapabilities {
            object_encoding: Some(0.0),
            ..ConnectCapabilities::default()
        };
        let w = Wanted::new()
            .track(Codec::Av1, 0)
            .track(Codec::Opus, 0)
            .track(Codec::H264, 1)
            .with_nano_offsets(true);
        let n = negotiate(&legacy, &w).unwrap();
        assert_eq!(n.outcome, Outcome::ServerSilent);
        assert!(n.multitrack_unconfirmed && !n.send_mod_ex_nanos);
        assert_eq!(
            n.info().unwrap(),
            "server did not say which codecs it accepts; sending AV1 (av01), Opus (Opus), \
             H.264 (avc1) and multitrack (tracks 1 and above) anyway."
        );
    }

    #[test]
    fn legacy_track_0_needs_nothing_from_the_server() {
        // The server lists only HEVC, yet legacy H.264/AAC (and MP3 at a legacy rate) on
        // track 0 are always taken.
        let s = with_caps_ex(server(&["hvc1"], &[], &[]), 0);
        let w = Wanted::new()
            .track(Codec::H264, 0)
            .track(Codec::Aac, 0)
            .legacy_track(Codec::Mp3);
        let n = negotiate(&s, &w).unwrap();
        assert_eq!(n.outcome, Outcome::LegacyOnly);
        assert_eq!(n.info(), None);
        assert_eq!(
            negotiate(&ConnectCapabilities::default(), &w)
                .unwrap()
                .outcome,
            Outcome::LegacyOnly
        );
        // MP3 in the `.mp3` form is enhanced, and this server does not take it.
        let w = Wanted::new().track(Codec::H264, 0).track(Codec::Mp3, 0);
        assert!(matches!(
            negotiate(&s, &w),
            Err(Refusal::Codec {
                codec: Codec::Mp3,
                ..
            })
        ));
    }

    #[test]
    fn a_codec_missing_from_the_list_is_refused_with_what_it_lists() {
        let s = server(&["avc1", "av01", "mp4a"], &[], &[]);
        let err = negotiate(&s, &hevc_aac()).unwrap_err();
        assert_eq!(
            err,
            Refusal::Codec {
                codec: Codec::H265,
                track_id: 0,
                listed: vec!["avc1".into(), "av01".into()],
            }
        );
        assert_eq!(
            err.to_string(),
            "server does not accept HEVC (hvc1); it lists avc1, av01; send a codec it lists, or \
             publish to a server that accepts HEVC."
        );
        // A list that holds the codec accepts it.
        let s = server(&["avc1", "hvc1"], &[], &[]);
        let n = negotiate(&s, &hevc_aac()).unwrap();
        assert_eq!(n.outcome, Outcome::Confirmed);
        assert_eq!(n.info(), None);
    }

    #[test]
    fn the_wildcard_list_accepts_every_codec() {
        let s = with_caps_ex(server(&["*"], &[], &[]), CAPS_EX_MULTITRACK);
        let w = Wanted::new()
            .track(Codec::Vp9, 0)
            .track(Codec::Flac, 0)
            .track(Codec::Eac3, 3);
        assert_eq!(negotiate(&s, &w).unwrap().outcome, Outcome::Confirmed);
    }

    #[test]
    fn info_maps_accept_by_decode_or_forward_and_the_wildcard_adds_its_flags() {
        let w = Wanted::new().track(Codec::H265, 0);
        let judge = |video: &[(&str, u32)]| negotiate(&server(&[], video, &[]), &w);
        assert!(judge(&[("hvc1", FOURCC_CAN_DECODE)]).is_ok());
        assert!(judge(&[("hvc1", FOURCC_CAN_FORWARD)]).is_ok());
        assert!(judge(&[("*", FOURCC_CAN_FORWARD)]).is_ok());
        // "*" forwards everything, whatever the codec's own entry says.
        assert!(judge(&[("*", FOURCC_CAN_FORWARD), ("hvc1", FOURCC_CAN_ENCODE)]).is_ok());
        // Encoding a codec says nothing about taking it from a publisher.
        let err = judge(&[("hvc1", FOURCC_CAN_ENCODE), ("*", FOURCC_CAN_ENCODE)]).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "server does not accept HEVC (hvc1); it lists no video codec; send H.264 on track 0"
            ),
            "{err}"
        );
        let err = judge(&[
            ("avc1", FOURCC_CAN_DECODE | FOURCC_CAN_FORWARD),
            ("vp09", 4),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("server does not accept HEVC (hvc1); it lists avc1, vp09; "),
            "{err}"
        );
    }

    #[test]
    fn either_the_list_or_the_map_accepts() {
        let s = server(&["avc1"], &[("hvc1", FOURCC_CAN_FORWARD)], &[]);
        let w = Wanted::new().track(Codec::H265, 0).track(Codec::H264, 1);
        let n = negotiate(&s, &w).unwrap();
        // Codecs confirmed; multitrack not (no capsEx).
        assert_eq!(n.outcome, Outcome::PartlyConfirmed);
        assert!(n.unconfirmed.is_empty() && n.multitrack_unconfirmed);
        assert_eq!(
            n.info().unwrap(),
            "server did not say whether it accepts multitrack (no capsEx); sending tracks 1 \
             and above anyway."
        );
    }

    #[test]
    fn a_kind_the_server_says_nothing_about_is_sent_unconfirmed() {
        // Only a video map: Opus is neither accepted nor excluded.
        let s = server(&[], &[("hvc1", FOURCC_CAN_DECODE)], &[]);
        let w = Wanted::new().track(Codec::H265, 0).track(Codec::Opus, 0);
        let n = negotiate(&s, &w).unwrap();
        assert_eq!(n.outcome, Outcome::PartlyConfirmed);
        assert_eq!(n.unconfirmed, [Codec::Opus]);
        assert_eq!(
            n.info().unwrap(),
            "server did not say whether it accepts Opus (Opus); sending it anyway."
        );
        // Only capsEx: no codec is stated at all.
        let s = with_caps_ex(ConnectCapabilities::default(), CAPS_EX_RECONNECT);
        let n = negotiate(&s, &w).unwrap();
        assert_eq!(n.unconfirmed, [Codec::H265, Codec::Opus]);
        assert!(
            n.info()
                .unwrap()
                .contains("accepts HEVC (hvc1) and Opus (Opus); sending them anyway")
        );
        // fourCcList has no kinds: a list without audio excludes Opus.
        let s = server(&["hvc1"], &[], &[]);
        let err = negotiate(&s, &w).unwrap_err();
        assert_eq!(
            err.to_string(),
            "server does not accept Opus (Opus); it lists no audio codec; send AAC on track 0, \
             or publish to a server that accepts Opus."
        );
    }

    #[test]
    fn a_track_above_0_needs_its_enhanced_codec_accepted() {
        let s = with_caps_ex(server(&["hvc1", "mp4a"], &[], &[]), CAPS_EX_MULTITRACK);
        let w = Wanted::new().track(Codec::H264, 0).track(Codec::H264, 2);
        let err = negotiate(&s, &w).unwrap_err();
        assert_eq!(
            err.to_string(),
            "server does not accept H.264 (avc1) on track 2; it lists hvc1; send a codec it \
             lists, or publish to a server that accepts H.264."
        );
        // AAC on track 1 goes out as mp4a, which this server lists.
        let w = Wanted::new().track(Codec::H265, 0).track(Codec::Aac, 1);
        assert_eq!(negotiate(&s, &w).unwrap().outcome, Outcome::Confirmed);
    }

    #[test]
    fn caps_ex_without_multitrack_refuses_tracks_above_0() {
        let w = Wanted::new().track(Codec::H264, 0).track(Codec::H264, 1);
        let s = with_caps_ex(server(&["*"], &[], &[]), CAPS_EX_RECONNECT);
        let err = negotiate(&s, &w).unwrap_err();
        assert_eq!(err, Refusal::Multitrack { caps_ex: 1 });
        assert_eq!(
            err.to_string(),
            "server does not accept multitrack (capsEx 0x01); it does not set the Multitrack \
             bit (0x02), so tracks 1 and above cannot be sent; remove the video_N/audio_N pads \
             (send track 0 only), or publish to a server that accepts multitrack."
        );
        // It is checked before the codecs (removing the pads may solve both).
        let s = with_caps_ex(server(&["hvc1"], &[], &[]), 0x0d);
        assert_eq!(
            negotiate(&s, &w).unwrap_err(),
            Refusal::Multitrack { caps_ex: 0x0d }
        );
        // Track 0 only: capsEx without Multitrack is fine.
        let s = with_caps_ex(server(&["*"], &[], &[]), CAPS_EX_RECONNECT);
        assert!(negotiate(&s, &Wanted::new().track(Codec::H265, 0)).is_ok());
        // With the bit: accepted.
        let s = with_caps_ex(server(&["*"], &[], &[]), CAPS_EX_MULTITRACK);
        assert_eq!(negotiate(&s, &w).unwrap().outcome, Outcome::Confirmed);
    }

    #[test]
    fn nano_offsets_only_when_the_server_has_mod_ex_and_nano_offset() {
        let w = hevc_aac().with_nano_offsets(true);
        let nanos = |caps_ex: Option<u32>| {
            let mut s = server(&["*"], &[], &[]);
            s.caps_ex = caps_ex;
            negotiate(&s, &w).unwrap().send_mod_ex_nanos
        };
        assert!(nanos(Some(
            CAPS_EX_RECONNECT | CAPS_EX_MODEX | CAPS_EX_TIMESTAMP_NANO_OFFSET
        )));
        assert!(!nanos(Some(CAPS_EX_MODEX)));
        assert!(!nanos(Some(CAPS_EX_TIMESTAMP_NANO_OFFSET)));
        assert!(!nanos(None));
        // Not wanted: never, whatever the server says.
        let s = with_caps_ex(server(&["*"], &[], &[]), 0x0f);
        assert!(!negotiate(&s, &hevc_aac()).unwrap().send_mod_ex_nanos);
    }

    #[test]
    fn listed_fourccs_in_messages_are_short_printable_and_of_the_kind() {
        let s = server(
            &["avc1", "\u{1b}[2J", "averylongname", "Opus", "avc1", "vp08"],
            &[("av01", FOURCC_CAN_DECODE), ("x\ny", FOURCC_CAN_DECODE)],
            &[],
        );
        assert_eq!(
            s.accepted_fourccs(MediaKind::Video),
            ["avc1", "vp08", "av01"]
        );
        assert_eq!(s.accepted_fourccs(MediaKind::Audio), ["Opus"]);
        // A huge map is quoted in part.
        let names: Vec<String> = (0..200).map(|i| format!("v{i:03}")).collect();
        let map: Vec<(&str, u32)> = names
            .iter()
            .map(|n| (n.as_str(), FOURCC_CAN_DECODE))
            .collect();
        let s = server(&[], &map, &[]);
        assert_eq!(s.accepted_fourccs(MediaKind::Video).len(), MAX_LISTED);
    }
}
