#![cfg(feature = "gst")]
//! Round trips of every FLV / Enhanced RTMP tag form FFmpeg 9 writes, against the crate's
//! `codec::flv`: FFmpeg 9 remuxes the GStreamer-made Matroska files to FLV at test time
//! (`-c copy -copyinkf -f flv`, one file per codec and two multitrack ones from the four-track
//! file), and for every tag
//! - the crate's parser reads the form the spec gives for that codec and track (packet type,
//!   FourCC, track id, multitrack type) and a composition time that makes FFmpeg's own PTS
//!   when it reads the same FLV back; the payload it splits off is exactly FFmpeg's packet
//!   (MD5), and sequence starts are exactly FFmpeg's extradata;
//! - the crate's builders give FFmpeg's bytes exactly, header and all.
//!
//! Forms FFmpeg never writes (ModEx, ManyTracks, ManyTracksManyCodecs, negative composition
//! times, commands) are covered by the crate's own unit tests only.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::ffmpeg9::{FrameMd5, ffmpeg9, framemd5_of_file, md5_hex, remux_flv};
use common::flv::{FlvTag, amf0_decode};
use common::gstmedia_ertmp::{Combo, combo_mkv, four_track_mkv};
use common::read_flv;
use common::util::TempDir;
use gstrtmpclient::codec::flv::{
    self, AudioPacketType, AudioTag, AudioTrack, FourCc, FrameType, VideoPacketType, VideoTag,
    VideoTagBody, VideoTrack,
};

/// Legacy FLV `SoundFormat` of MP3.
const SOUND_FORMAT_MP3: u8 = 2;

/// FFmpeg's codec name for a FourCC.
fn ffmpeg_codec(fourcc: FourCc) -> &'static str {
    match &fourcc {
        b"avc1" => "h264",
        b"hvc1" => "hevc",
        b"av01" => "av1",
        b"vp09" => "vp9",
        b"mp4a" => "aac",
        b"Opus" => "opus",
        b"fLaC" => "flac",
        b"ac-3" => "ac3",
        b"ec-3" => "eac3",
        b".mp3" => "mp3",
        other => panic!("unexpected FourCC {other:?}"),
    }
}

fn fourcc_str(f: FourCc) -> String {
    String::from_utf8_lossy(&f).into_owned()
}

/// FFmpeg 9's FLV of `input` and FFmpeg 9's framemd5 of that FLV, with the file's own
/// timestamps (`-copyts`: otherwise FFmpeg moves them by the start time).
fn fixture(
    ff: &Path,
    dir: &TempDir,
    name: &str,
    input: &Path,
    maps: &[&str],
) -> (Vec<FlvTag>, FrameMd5) {
    let out = dir.join(format!("{name}.flv"));
    remux_flv(ff, input, maps, &out);
    let file = read_flv(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!file.truncated, "{name}: truncated FLV");
    (file.tags, framemd5_of_file(ff, &out, &["-copyts"]))
}

/// Walks through the packets FFmpeg read from the FLV, stream by stream, in the tags' order.
struct Packets<'a> {
    frames: &'a FrameMd5,
    next: Vec<usize>,
}

impl<'a> Packets<'a> {
    fn new(frames: &'a FrameMd5) -> Packets<'a> {
        Packets {
            frames,
            next: vec![0; frames.streams.len()],
        }
    }

    /// The next packet of the stream with this codec: (dts ms, pts ms, size, md5).
    fn next(&mut self, label: &str, codec: &str) -> (i64, i64, usize, String) {
        let s = self.frames.stream(codec, None).index;
        let packets = self.frames.stream_packets(s);
        let i = self.next[s];
        self.next[s] += 1;
        let p = packets
            .get(i)
            .unwrap_or_else(|| panic!("{label}: more {codec} tags than FFmpeg read packets"));
        assert_eq!(
            self.frames.streams[s].tb,
            (1, 1000),
            "{label}: FLV time base"
        );
        (p.dts, p.pts, p.size, p.md5.clone())
    }

    fn assert_all_seen(&self, label: &str) {
        for (s, &n) in self.next.iter().enumerate() {
            assert_eq!(
                n,
                self.frames.stream_packets(s).len(),
                "{label}: stream {s}: tags vs packets"
            );
        }
    }
}

/// The extradata FFmpeg read for the stream of `codec`.
fn extradata(frames: &FrameMd5, codec: &str) -> Option<(usize, String)> {
    frames.stream(codec, None).extradata.clone()
}

/// A coded frame's payload is FFmpeg's packet, and its timestamps FFmpeg's.
fn check_frame(
    label: &str,
    packets: &mut Packets<'_>,
    codec: &str,
    tag: &FlvTag,
    composition_time: i32,
    data: &[u8],
) {
    let (dts, pts, size, md5) = packets.next(label, codec);
    assert_eq!(i64::from(tag.timestamp), dts, "{label}: DTS");
    assert_eq!(
        i64::from(tag.timestamp) + i64::from(composition_time),
        pts,
        "{label}: DTS + composition time = FFmpeg's PTS"
    );
    assert!(
        data.len() == size && md5_hex(data) == md5,
        "{label}: the payload the parser split off is not FFmpeg's packet"
    );
}

/// A sequence start's record is what FFmpeg reads as the stream's extradata (empty for AC-3
/// and E-AC-3, whose sequence start carries nothing).
fn check_config(label: &str, frames: &FrameMd5, codec: &str, data: &[u8]) {
    match extradata(frames, codec) {
        Some((size, md5)) => assert!(
            data.len() == size && md5_hex(data) == md5,
            "{label}: the sequence start is not FFmpeg's extradata"
        ),
        None => assert!(data.is_empty(), "{label}: a record FFmpeg does not keep"),
    }
}

/// `colorInfo` metadata: AMF0 string "colorInfo" then an object (Enhanced RTMP v2).
fn check_color_info(label: &str, data: &[u8]) {
    let mut r = data;
    let name = amf0_decode(&mut r).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(name.as_str(), Some("colorInfo"), "{label}");
    let info = amf0_decode(&mut r).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(
        info.get("colorConfig").is_some(),
        "{label}: colorInfo without colorConfig: {info:?}"
    );
}

/// Re-builds a parsed enhanced video tag with the crate's builders.
fn rebuild_ex_video(tag: &VideoTag<'_>, x: &flv::ExVideo<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match x.multitrack {
        None => {
            let t = &x.tracks[0];
            flv::write_ex_video(
                &mut out,
                tag.frame_type,
                x.packet_type,
                t.fourcc,
                t.composition_time,
                &x.mod_ex,
                t.data,
            )
            .unwrap();
            // The zero-copy form: fixed header + borrowed payload, the same bytes.
            if x.mod_ex.is_empty() {
                let (h, n) = flv::ex_video_header(
                    tag.frame_type,
                    x.packet_type,
                    t.fourcc,
                    t.composition_time,
                )
                .unwrap();
                assert_eq!([&h[..n], t.data].concat(), out, "ex_video_header");
            }
        }
        Some(m) => {
            let tracks: Vec<VideoTrack<'_>> = x.tracks.clone();
            flv::write_ex_video_multitrack(
                &mut out,
                tag.frame_type,
                x.packet_type,
                m,
                &x.mod_ex,
                &tracks,
            )
            .unwrap();
        }
    }
    out
}

fn rebuild_ex_audio(x: &flv::ExAudio<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match x.multitrack {
        None => {
            let t = &x.tracks[0];
            flv::write_ex_audio(&mut out, x.packet_type, t.fourcc, &x.mod_ex, t.data).unwrap();
            if x.mod_ex.is_empty() {
                let h = flv::ex_audio_header(x.packet_type, t.fourcc).unwrap();
                assert_eq!([&h[..], t.data].concat(), out, "ex_audio_header");
            }
        }
        Some(m) => {
            let tracks: Vec<AudioTrack<'_>> = x.tracks.clone();
            flv::write_ex_audio_multitrack(&mut out, x.packet_type, m, &x.mod_ex, &tracks).unwrap();
        }
    }
    out
}

/// Parses and re-builds every tag; returns the forms seen, e.g. "video hvc1 t1 OneTrack
/// CodedFrames Inter".
fn round_trip(label: &str, tags: &[FlvTag], frames: &FrameMd5) -> BTreeSet<String> {
    let mut forms = BTreeSet::new();
    let mut packets = Packets::new(frames);
    for (i, tag) in tags.iter().enumerate() {
        let l = format!("{label} tag {i} (ts {})", tag.timestamp);
        if tag.is_video() {
            let v = flv::parse_video(&tag.data).unwrap_or_else(|e| panic!("{l}: {e}"));
            let rebuilt = match &v.body {
                VideoTagBody::Legacy(lv) => {
                    assert_eq!(lv.codec_id, flv::CODEC_ID_AVC, "{l}: legacy video is AVC");
                    let pt = lv.avc_packet_type.expect("AVC packet type");
                    forms.insert(format!("video legacy-avc {pt:?} {:?}", v.frame_type));
                    match pt {
                        flv::AvcPacketType::SequenceHeader => {
                            check_config(&l, frames, "h264", lv.data)
                        }
                        flv::AvcPacketType::Nalu => {
                            check_frame(&l, &mut packets, "h264", tag, lv.composition_time, lv.data)
                        }
                        flv::AvcPacketType::EndOfSequence => assert!(lv.data.is_empty(), "{l}"),
                    }
                    flv::build_avc_video(v.frame_type, pt, lv.composition_time, lv.data)
                }
                VideoTagBody::Enhanced(x) => {
                    assert!(x.mod_ex.is_empty(), "{l}: FFmpeg writes no ModEx");
                    assert_eq!(x.command, None, "{l}");
                    for t in &x.tracks {
                        let codec = ffmpeg_codec(t.fourcc);
                        let mt = x.multitrack.map_or("single".into(), |m| format!("{m:?}"));
                        forms.insert(format!(
                            "video {} t{} {mt} {:?} {:?}",
                            fourcc_str(t.fourcc),
                            t.track_id,
                            x.packet_type,
                            v.frame_type
                        ));
                        match x.packet_type {
                            VideoPacketType::SequenceStart => {
                                check_config(&l, frames, codec, t.data)
                            }
                            VideoPacketType::CodedFrames => check_frame(
                                &l,
                                &mut packets,
                                codec,
                                tag,
                                t.composition_time,
                                t.data,
                            ),
                            VideoPacketType::CodedFramesX => {
                                assert_eq!(t.composition_time, 0, "{l}");
                                check_frame(&l, &mut packets, codec, tag, 0, t.data)
                            }
                            VideoPacketType::Metadata => {
                                // Metadata ignores the frame type; FFmpeg sends it as a command.
                                assert_eq!(v.frame_type, FrameType::Command, "{l}");
                                check_color_info(&l, t.data)
                            }
                            VideoPacketType::SequenceEnd => assert!(t.data.is_empty(), "{l}"),
                            other => panic!("{l}: unexpected packet type {other:?}"),
                        }
                    }
                    rebuild_ex_video(&v, x)
                }
            };
            assert_eq!(
                rebuilt, tag.data,
                "{l}: the crate's builder differs from FFmpeg 9"
            );
        } else if tag.is_audio() {
            let a = flv::parse_audio(&tag.data).unwrap_or_else(|e| panic!("{l}: {e}"));
            match &a {
                AudioTag::Legacy(la) if la.sound_format == flv::SOUND_FORMAT_AAC => {
                    let pt = la.aac_packet_type.expect("AAC packet type");
                    forms.insert(format!("audio legacy-aac {pt:?}"));
                    // The spec's fixed flags for AAC: 44 kHz, 16-bit, stereo.
                    assert_eq!(
                        (la.sound_rate, la.sound_size, la.sound_type),
                        (3, 1, 1),
                        "{l}"
                    );
                    match pt {
                        flv::AacPacketType::SequenceHeader => {
                            check_config(&l, frames, "aac", la.data)
                        }
                        flv::AacPacketType::Raw => {
                            check_frame(&l, &mut packets, "aac", tag, 0, la.data)
                        }
                    }
                    assert_eq!(
                        flv::build_aac_audio(pt, la.data),
                        tag.data,
                        "{l}: the crate's builder differs from FFmpeg 9"
                    );
                }
                AudioTag::Legacy(la) => {
                    assert_eq!(la.sound_format, SOUND_FORMAT_MP3, "{l}: legacy audio");
                    forms.insert("audio legacy-mp3".to_string());
                    // 44 kHz, 16-bit, stereo: what the files are. (The crate has no legacy MP3
                    // builder to compare bytes with.)
                    assert_eq!(
                        (la.sound_rate, la.sound_size, la.sound_type),
                        (3, 1, 1),
                        "{l}"
                    );
                    check_frame(&l, &mut packets, "mp3", tag, 0, la.data);
                }
                AudioTag::Enhanced(x) => {
                    assert!(x.mod_ex.is_empty(), "{l}: FFmpeg writes no ModEx");
                    for t in &x.tracks {
                        let codec = ffmpeg_codec(t.fourcc);
                        let mt = x.multitrack.map_or("single".into(), |m| format!("{m:?}"));
                        forms.insert(format!(
                            "audio {} t{} {mt} {:?}",
                            fourcc_str(t.fourcc),
                            t.track_id,
                            x.packet_type
                        ));
                        match x.packet_type {
                            AudioPacketType::SequenceStart => {
                                check_config(&l, frames, codec, t.data)
                            }
                            AudioPacketType::CodedFrames => {
                                check_frame(&l, &mut packets, codec, tag, 0, t.data)
                            }
                            AudioPacketType::MultichannelConfig => {
                                // Native order (1), 2 channels, mask FL|FR: the files are stereo.
                                assert_eq!(t.data, [1, 2, 0, 0, 0, 3], "{l}: MultichannelConfig");
                            }
                            other => panic!("{l}: unexpected packet type {other:?}"),
                        }
                    }
                    assert_eq!(
                        rebuild_ex_audio(x),
                        tag.data,
                        "{l}: the crate's builder differs from FFmpeg 9"
                    );
                }
            }
        }
    }
    packets.assert_all_seen(label);
    forms
}

fn set(forms: &[&str]) -> BTreeSet<String> {
    forms.iter().map(|s| s.to_string()).collect()
}

/// The legacy H.264 forms of every H.264-on-track-0 file.
const AVC_FORMS: [&str; 4] = [
    "video legacy-avc SequenceHeader Key",
    "video legacy-avc Nalu Key",
    "video legacy-avc Nalu Inter",
    "video legacy-avc EndOfSequence Key",
];

const AAC_FORMS: [&str; 2] = ["audio legacy-aac SequenceHeader", "audio legacy-aac Raw"];

/// FourCC audio on track 0: sequence start, channel layout, frames.
fn ex_audio_forms(fourcc: &str) -> Vec<String> {
    ["SequenceStart", "MultichannelConfig", "CodedFrames"]
        .iter()
        .map(|p| format!("audio {fourcc} t0 single {p}"))
        .collect()
}

fn combo(c: Combo) {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = combo_mkv(c) else { return };
    let dir = TempDir::new(c.name());
    let (tags, frames) = fixture(&ff, &dir, c.name(), &mkv, &[]);
    let forms = round_trip(c.name(), &tags, &frames);
    let (v, a) = c.ffmpeg_codecs();
    let mut expected: BTreeSet<String> = match v {
        "h264" => set(&AVC_FORMS),
        "hevc" => set(&[
            "video hvc1 t0 single SequenceStart Key",
            "video hvc1 t0 single Metadata Command",
            "video hvc1 t0 single CodedFrames Key",
            "video hvc1 t0 single CodedFrames Inter",
            // Frames whose PTS equals their DTS go without a composition time.
            "video hvc1 t0 single CodedFramesX Inter",
        ]),
        "av1" | "vp9" => {
            let f = if v == "av1" { "av01" } else { "vp09" };
            [
                "SequenceStart Key",
                "Metadata Command",
                "CodedFrames Key",
                "CodedFrames Inter",
            ]
            .iter()
            .map(|p| format!("video {f} t0 single {p}"))
            .collect()
        }
        other => panic!("{other}"),
    };
    match a {
        "aac" => expected.extend(set(&AAC_FORMS)),
        "mp3" => expected.extend(set(&["audio legacy-mp3"])),
        "opus" => expected.extend(ex_audio_forms("Opus")),
        "flac" => expected.extend(ex_audio_forms("fLaC")),
        "ac3" => expected.extend(ex_audio_forms("ac-3")),
        "eac3" => expected.extend(ex_audio_forms("ec-3")),
        other => panic!("{other}"),
    }
    assert_eq!(forms, expected, "{}: tag forms", c.name());
}

#[test]
fn hevc_tags_round_trip_with_ffmpeg9() {
    combo(Combo::HevcAac);
}

#[test]
fn av1_tags_round_trip_with_ffmpeg9() {
    combo(Combo::Av1Aac);
}

#[test]
fn vp9_tags_round_trip_with_ffmpeg9() {
    combo(Combo::Vp9Aac);
}

#[test]
fn opus_tags_round_trip_with_ffmpeg9() {
    combo(Combo::H264Opus);
}

#[test]
fn flac_tags_round_trip_with_ffmpeg9() {
    combo(Combo::H264Flac);
}

#[test]
fn ac3_tags_round_trip_with_ffmpeg9() {
    combo(Combo::H264Ac3);
}

#[test]
fn eac3_tags_round_trip_with_ffmpeg9() {
    combo(Combo::H264Eac3);
}

#[test]
fn mp3_tags_round_trip_with_ffmpeg9() {
    combo(Combo::H264Mp3);
}

#[test]
fn legacy_avc_and_aac_tags_round_trip_with_ffmpeg9() {
    combo(Combo::H264Aac);
}

/// The four-track file as FFmpeg 9 writes it: track 0 as usual (HEVC plain enhanced, AAC
/// legacy), track 1 as Multitrack OneTrack with FourCC and track id (H.264 as `avc1`, Opus).
/// Then with the tracks swapped (`-map`), so H.264 and Opus are track 0 and HEVC (with
/// composition times inside the multitrack body) and AAC (as `mp4a`) are track 1.
#[test]
fn multitrack_tags_round_trip_with_ffmpeg9() {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = four_track_mkv() else { return };
    let dir = TempDir::new("multitrack");
    let one = |t: &str, p: &str| format!("{t} t1 OneTrack {p}");

    let (tags, frames) = fixture(&ff, &dir, "four", &mkv, &[]);
    let forms = round_trip("four-track", &tags, &frames);
    let mut expected = set(&[
        "video hvc1 t0 single SequenceStart Key",
        "video hvc1 t0 single Metadata Command",
        "video hvc1 t0 single CodedFrames Key",
        "video hvc1 t0 single CodedFrames Inter",
        "video hvc1 t0 single CodedFramesX Inter",
    ]);
    expected.extend(set(&AAC_FORMS));
    for p in ["SequenceStart Key", "CodedFrames Key", "CodedFrames Inter"] {
        expected.insert(one("video avc1", p));
    }
    for p in ["SequenceStart", "MultichannelConfig", "CodedFrames"] {
        expected.insert(one("audio Opus", p));
    }
    // FFmpeg ends the H.264 of track 1 with a legacy (track 0) AVC end of sequence.
    expected.insert("video legacy-avc EndOfSequence Key".into());
    assert_eq!(forms, expected, "four-track tag forms");

    let swapped = [
        "-map", "0:v:1", "-map", "0:v:0", "-map", "0:a:1", "-map", "0:a:0",
    ];
    let (tags, frames) = fixture(&ff, &dir, "swapped", &mkv, &swapped);
    let forms = round_trip("swapped four-track", &tags, &frames);
    let mut expected = set(&AVC_FORMS);
    expected.extend(ex_audio_forms("Opus"));
    for p in [
        "SequenceStart Key",
        "CodedFrames Key",
        "CodedFrames Inter",
        "CodedFramesX Inter",
    ] {
        expected.insert(one("video hvc1", p));
    }
    // FFmpeg sends colorInfo of track 1 without a multitrack wrapper.
    expected.insert("video hvc1 t0 single Metadata Command".into());
    // AAC off track 0 is enhanced, so it gets a MultichannelConfig like the other FourCCs.
    for p in ["SequenceStart", "MultichannelConfig", "CodedFrames"] {
        expected.insert(one("audio mp4a", p));
    }
    assert_eq!(forms, expected, "swapped four-track tag forms");
}
