#![cfg(feature = "gst")]
//! The Enhanced RTMP codec records of `codec::{hevc, av1, vp9, opus, flac, ac3, mp3}` against
//! independent references made at test time: GStreamer's encoders and parsers (h265parse's
//! hvcC, the caps of av1parse/vp9parse/ac3parse/mpegaudioparse, the streamheaders of
//! opusenc/flacenc/matroskademux) and the FLV that FFmpeg 9 writes for GStreamer-made files
//! (av1C, vpcC, OpusHead, STREAMINFO, MultichannelConfig).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::gstrun::{pipeline, require_elements};
use common::read_flv;
use common::util::{TempDir, is_ci, loud};
use gst::prelude::*;
use gstrtmpclient::codec::colour::ColourDescription;
use gstrtmpclient::codec::{ac3, av1, flac, hevc, mp3, opus, vp9};

const PULL_TIMEOUT: gst::ClockTime = gst::ClockTime::from_seconds(20);

/// FFmpeg 9 (the reference E-RTMP writer): `$FFMPEG9`, or the imageio-ffmpeg build in
/// /opt/ff9. Skip-or-fail like the other tools.
fn ffmpeg9() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FFMPEG9") {
        return Some(PathBuf::from(p));
    }
    let found = std::fs::read_dir("/opt/ff9/lib").ok().and_then(|dirs| {
        dirs.flatten().find_map(|d| {
            let bin = d.path().join("site-packages/imageio_ffmpeg/binaries");
            std::fs::read_dir(bin).ok()?.flatten().find_map(|f| {
                let name = f.file_name().to_string_lossy().into_owned();
                name.starts_with("ffmpeg-linux").then(|| f.path())
            })
        })
    });
    if found.is_none() {
        assert!(
            !is_ci(),
            "FFmpeg 9 (imageio-ffmpeg in /opt/ff9) missing, and CI is set"
        );
        loud(
            "\n*** SKIPPING TEST: FFmpeg 9 not found (set FFMPEG9 or pip install imageio-ffmpeg into /opt/ff9)\n",
        );
    }
    found
}

/// What one appsink received.
struct Pulled {
    caps: gst::Caps,
    buffers: Vec<(Vec<u8>, bool)>,
}

impl Pulled {
    fn s(&self) -> &gst::StructureRef {
        self.caps.structure(0).unwrap()
    }

    fn int(&self, field: &str) -> i32 {
        self.s()
            .get::<i32>(field)
            .unwrap_or_else(|e| panic!("{field}: {e} in {}", self.caps))
    }

    fn buffers_of(&self, field: &str) -> Vec<Vec<u8>> {
        let array = self.s().get::<gst::Array>(field).unwrap();
        array
            .iter()
            .map(|v| {
                v.get::<gst::Buffer>()
                    .unwrap()
                    .map_readable()
                    .unwrap()
                    .to_vec()
            })
            .collect()
    }
}

/// Runs a pipeline to EOS and returns what each named appsink got (buffers with their
/// keyframe flag, and the caps of the first sample).
fn pull(launch: &str, sinks: &[&str]) -> Vec<Pulled> {
    let p = pipeline(launch);
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let check_bus = |bus: &gst::Bus| {
        while let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = m.view() {
                panic!("{launch}: {} ({:?})", e.error(), e.debug());
            }
        }
    };
    let mut out = Vec::new();
    for name in sinks {
        let sink = p.by_name(name).unwrap();
        let mut caps = None;
        let mut buffers = Vec::new();
        loop {
            let sample =
                sink.emit_by_name::<Option<gst::Sample>>("try-pull-sample", &[&PULL_TIMEOUT]);
            let Some(sample) = sample else {
                if !sink.property::<bool>("eos") {
                    // Popping drops other messages (the EOS too): only once it has failed.
                    check_bus(&bus);
                    panic!("{name}: no sample within 20 s");
                }
                break;
            };
            caps.get_or_insert_with(|| sample.caps().unwrap().to_owned());
            let b = sample.buffer().unwrap();
            let key = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
            buffers.push((b.map_readable().unwrap().to_vec(), key));
        }
        out.push(Pulled {
            caps: caps.unwrap_or_else(|| panic!("{name}: no buffer")),
            buffers,
        });
    }
    // Files written by filesinks in the same pipeline are complete at EOS.
    let eos = bus.timed_pop_filtered(
        PULL_TIMEOUT,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    if let Some(gst::MessageView::Error(e)) = eos.as_ref().map(|m| m.view()) {
        panic!("{launch}: {} ({:?})", e.error(), e.debug());
    }
    assert!(eos.is_some(), "{launch}: no EOS");
    p.set_state(gst::State::Null).unwrap();
    out
}

/// Remuxes a file to FLV with FFmpeg 9 (`-c copy`) and returns the FLV tag bodies.
fn ffmpeg_flv(ffmpeg: &Path, input: &Path) -> Vec<common::FlvTag> {
    let out = input.with_extension("flv");
    let status = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(["-map", "0", "-c", "copy", "-copyinkf", "-f", "flv"])
        .arg(&out)
        .status()
        .expect("run FFmpeg 9");
    assert!(status.success(), "FFmpeg 9 failed on {}", input.display());
    read_flv(&out).unwrap().tags
}

/// The body of the first Enhanced RTMP tag of `tag_type` (8 audio, 9 video) with this packet
/// type and FourCC, after its 5-byte header.
fn ex_body(
    tags: &[common::FlvTag],
    tag_type: u8,
    packet_type: u8,
    fourcc: &[u8; 4],
) -> Option<Vec<u8>> {
    tags.iter().find_map(|t| {
        let d = &t.data;
        let ex = if tag_type == 9 {
            d.first()? & 0x80 != 0
        } else {
            d.first()? >> 4 == 9
        };
        (t.tag_type == tag_type && ex && d[0] & 0x0f == packet_type && d.get(1..5)? == fourcc)
            .then(|| d[5..].to_vec())
    })
}

/// ISO/IEC 23091-2 codes of a GStreamer colorimetry string, for the ones these tests use (what
/// matroskamux writes into the file FFmpeg reads).
fn iso_colour(colorimetry: &str) -> ColourDescription {
    let (p, t, m) = match colorimetry {
        "bt601" => (6, 6, 6),
        "bt709" => (1, 1, 1),
        other => panic!("colorimetry {other}: extend the test's table"),
    };
    ColourDescription {
        primaries: p,
        transfer_characteristics: t,
        matrix_coefficients: m,
    }
}

fn chroma_format(idc: u8) -> &'static str {
    ["4:0:0", "4:2:0", "4:2:2", "4:4:4"][usize::from(idc)]
}

#[test]
fn hevc_hvcc_from_in_band_parameter_sets_equals_h265parse() {
    if !require_elements(&["x265enc", "h265parse"]) {
        return;
    }
    // 66x38 is coded as 72x40 with a conformance window; 4:2:2 and 4:4:4 are range-extension
    // profiles with other chroma formats and bit depths. (x265 3.5 corrupts its heap on 48x32
    // I422_10LE, hence 64x64 there.)
    for (format, w, h, colorimetry) in [
        ("I420", 64, 48, None),
        ("I420", 66, 38, None),
        ("I420", 64, 48, Some("bt709")),
        ("I420_10LE", 64, 48, None),
        ("I422_10LE", 64, 64, None),
        ("Y444", 32, 32, None),
    ] {
        let colorimetry_caps = colorimetry.map_or(String::new(), |c| format!(",colorimetry={c}"));
        let launch = format!(
            "videotestsrc num-buffers=3 ! video/x-raw,format={format},width={w},height={h},framerate=30/1{colorimetry_caps} \
             ! x265enc speed-preset=ultrafast key-int-max=2 ! video/x-h265,stream-format=byte-stream,alignment=au \
             ! tee name=t t. ! queue ! appsink name=raw sync=false \
             t. ! queue ! h265parse ! video/x-h265,stream-format=hvc1,alignment=au ! appsink name=hvc1 sync=false"
        );
        let pulled = pull(&launch, &["raw", "hvc1"]);
        let (raw, parsed) = (&pulled[0], &pulled[1]);
        let mut converted = Vec::new();
        let info = hevc::annexb_to_length_prefixed(&raw.buffers[0].0, &mut converted).unwrap();
        assert!(
            info.keyframe && info.has_parameter_sets(),
            "{format} {w}x{h}"
        );
        let built = hevc::HevcDecoderConfigurationRecord::from_parameter_sets(
            &info.vps, &info.sps, &info.pps,
        )
        .unwrap();
        let codec_data = parsed.s().get::<gst::Buffer>("codec_data").unwrap();
        let codec_data = codec_data.map_readable().unwrap();
        // Byte for byte: h265parse and FFmpeg write the same record for these streams.
        assert_eq!(built.to_bytes(), codec_data.as_slice(), "{format} {w}x{h}");
        assert_eq!(
            hevc::HevcDecoderConfigurationRecord::parse(&codec_data).unwrap(),
            built
        );
        let sps = hevc::parse_sps(&info.sps[0]).unwrap();
        assert_eq!(
            (sps.width as i32, sps.height as i32),
            (parsed.int("width"), parsed.int("height"))
        );
        assert_eq!((sps.width, sps.height), (w, h));
        let s = parsed.s();
        assert_eq!(
            s.get::<&str>("chroma-format").unwrap(),
            chroma_format(sps.chroma_format_idc)
        );
        assert_eq!(
            s.get::<u32>("bit-depth-luma").unwrap(),
            u32::from(sps.bit_depth_luma)
        );
        assert_eq!(
            s.get::<u32>("bit-depth-chroma").unwrap(),
            u32::from(sps.bit_depth_chroma)
        );
        // The VUI: x265 writes timing info, and the colour description when the input caps
        // have one (h265parse's caps colorimetry comes from it).
        let vui = sps.vui.as_ref().expect("x265 writes a VUI");
        assert_eq!(vui.frame_rate, Some((30, 1)));
        if let Some(c) = colorimetry {
            assert_eq!(s.get::<&str>("colorimetry").unwrap(), c);
            assert_eq!(vui.colour, Some(iso_colour(c)), "{format} {w}x{h}");
        }
        // The hvc1 access units check out without copying, keyframes as GStreamer flags them.
        assert_eq!(parsed.buffers.len(), raw.buffers.len());
        for (i, (au, key)) in parsed.buffers.iter().enumerate() {
            let info = hevc::length_prefixed_info(au, built.length_size()).unwrap();
            assert_eq!(info.keyframe, *key, "{format} {w}x{h} AU {i}");
        }
        // Our Annex-B conversion gives the same NAL units h265parse puts into its hvc1 output
        // (h265parse drops nothing x265 sends).
        let ours: Vec<&[u8]> = hevc::length_prefixed_nals(&converted, 4)
            .map(Result::unwrap)
            .collect();
        let theirs: Vec<&[u8]> = hevc::length_prefixed_nals(&parsed.buffers[0].0, 4)
            .map(Result::unwrap)
            .filter(|n| hevc::nal_type(n) != Some(hevc::NAL_AUD))
            .collect();
        assert_eq!(ours, theirs, "{format} {w}x{h}");
    }
}

#[test]
fn av1_av1c_from_sequence_header_equals_ffmpeg() {
    if !require_elements(&["av1enc", "av1parse", "matroskamux"]) {
        return;
    }
    let Some(ffmpeg) = ffmpeg9() else { return };
    let dir = TempDir::new("av1c");
    for (format, w, h, profile, chroma) in [
        ("I420", 64, 48, "main", "4:2:0"),
        ("Y444", 32, 32, "high", "4:4:4"),
        ("Y42B", 48, 32, "professional", "4:2:2"),
    ] {
        let mkv = dir.join(format!("{format}.mkv"));
        let launch = format!(
            "videotestsrc num-buffers=3 ! video/x-raw,format={format},width={w},height={h},framerate=30/1 \
             ! av1enc cpu-used=8 usage-profile=realtime ! av1parse \
             ! video/x-av1,stream-format=obu-stream,alignment=tu ! tee name=t \
             t. ! queue ! appsink name=tu sync=false \
             t. ! queue ! matroskamux ! filesink location={}",
            mkv.display()
        );
        let pulled = pull(&launch, &["tu"]);
        let tus = &pulled[0];
        let first = &tus.buffers[0].0;
        let seq_obu = av1::find_sequence_header(first)
            .unwrap()
            .expect("sequence header in the first TU");
        let seq = av1::parse_sequence_header(seq_obu.payload).unwrap();
        assert_eq!(
            (seq.max_frame_width, seq.max_frame_height),
            (w, h),
            "{format}"
        );
        let s = tus.s();
        assert_eq!(s.get::<&str>("profile").unwrap(), profile);
        assert_eq!(s.get::<&str>("chroma-format").unwrap(), chroma);
        assert_eq!(
            s.get::<u32>("bit-depth-luma").unwrap(),
            u32::from(seq.bit_depth)
        );
        let ours =
            av1::Av1CodecConfigurationRecord::from_sequence_header_obu(seq_obu.data).unwrap();
        // GStreamer's Matroska AV1 has no CodecPrivate: FFmpeg builds this av1C itself.
        let tags = ffmpeg_flv(&ffmpeg, &mkv);
        let theirs = ex_body(&tags, 9, 0, b"av01").expect("av01 SequenceStart from FFmpeg 9");
        assert_eq!(ours.to_bytes(), theirs, "{format}");
        // Every TU starts with one temporal delimiter, which the ranges leave out.
        for (tu, key) in &tus.buffers {
            let info = av1::temporal_unit(tu, seq.reduced_still_picture_header).unwrap();
            assert_eq!(info.temporal_delimiters, 1, "{format}");
            assert_eq!(info.ranges.len(), 1, "{format}");
            assert_eq!(info.ranges[0], 2..tu.len(), "{format}");
            assert_eq!(info.keyframe, *key, "{format}");
            assert_eq!(info.sequence_header.is_some(), *key, "{format}");
        }
    }
}

#[test]
fn vp9_vpcc_from_keyframe_equals_ffmpeg() {
    if !require_elements(&["vp9enc", "vp9parse", "webmmux"]) {
        return;
    }
    let Some(ffmpeg) = ffmpeg9() else { return };
    let dir = TempDir::new("vpcc");
    for (format, w, h, colorimetry, profile) in [
        ("I420", 160, 96, None, 0),
        ("I420", 64, 48, Some("bt709"), 0),
        ("Y444", 32, 32, None, 1),
        ("I420_10LE", 64, 48, None, 2),
    ] {
        let webm = dir.join(format!("{format}-{w}.webm"));
        let colorimetry_caps = colorimetry.map_or(String::new(), |c| format!(",colorimetry={c}"));
        let launch = format!(
            "videotestsrc num-buffers=3 ! video/x-raw,format={format},width={w},height={h},framerate=30/1{colorimetry_caps} \
             ! vp9enc deadline=1 cpu-used=8 ! vp9parse ! tee name=t \
             t. ! queue ! appsink name=v sync=false \
             t. ! queue ! webmmux ! filesink location={}",
            webm.display()
        );
        let pulled = pull(&launch, &["v"]);
        let v = &pulled[0];
        let header = vp9::parse_frame_header(&v.buffers[0].0).unwrap();
        assert!(header.keyframe && v.buffers[0].1);
        assert_eq!(header.profile, profile, "{format}");
        assert_eq!(header.frame_size, Some((w, h)));
        let s = v.s();
        assert_eq!((v.int("width"), v.int("height")), (w as i32, h as i32));
        assert_eq!(s.get::<&str>("profile").unwrap(), profile.to_string());
        let color = header.color.unwrap();
        assert_eq!(
            s.get::<u32>("bit-depth-luma").unwrap(),
            u32::from(color.bit_depth)
        );
        let caps_colour = iso_colour(s.get::<&str>("colorimetry").unwrap());
        let ours =
            vp9::VpCodecConfigurationRecord::from_keyframe(&header, Some(caps_colour), false)
                .unwrap();
        let tags = ffmpeg_flv(&ffmpeg, &webm);
        let theirs = ex_body(&tags, 9, 0, b"vp09").expect("vp09 SequenceStart from FFmpeg 9");
        assert_eq!(ours.to_bytes(), theirs, "{format} {w}x{h}");
        // Inter frames parse, and cannot make a vpcC.
        let inter = vp9::parse_frame_header(&v.buffers[1].0).unwrap();
        assert!(!inter.keyframe && !v.buffers[1].1);
    }
}

#[test]
fn opus_head_from_caps_fields_equals_opusenc_and_ffmpeg() {
    if !require_elements(&["opusenc", "matroskamux", "matroskademux"]) {
        return;
    }
    let Some(ffmpeg) = ffmpeg9() else { return };
    let dir = TempDir::new("opushead");
    for (channels, rate) in [(1, 48000), (2, 48000), (2, 16000), (6, 48000), (8, 48000)] {
        let mka = dir.join(format!("{channels}-{rate}.mka"));
        let launch = format!(
            "audiotestsrc num-buffers=5 ! audio/x-raw,rate={rate},channels={channels} ! opusenc \
             ! tee name=t t. ! queue ! appsink name=o sync=false \
             t. ! queue ! matroskamux ! filesink location={}",
            mka.display()
        );
        let pulled = pull(&launch, &["o"]);
        let o = &pulled[0];
        let header = &o.buffers_of("streamheader")[0];
        let parsed = opus::OpusHead::from_streamheader(&o.buffers_of("streamheader")).unwrap();
        assert_eq!(&parsed.to_bytes(), header);
        let family = o.int("channel-mapping-family") as u8;
        let streams = o
            .s()
            .get::<i32>("stream-count")
            .ok()
            .map(|s| (s as u8, o.int("coupled-count") as u8));
        let mapping: Option<Vec<u8>> = o
            .s()
            .get::<gst::Array>("channel-mapping")
            .ok()
            .map(|a| a.iter().map(|v| v.get::<i32>().unwrap() as u8).collect());
        // Pre-skip is not in the caps: 312 (libopus' lookahead, in 48 kHz samples) is what
        // opusenc writes at every rate; the other fields come from the caps.
        assert_eq!(parsed.pre_skip, 312);
        let from_caps = opus::OpusHead::new(
            o.int("channels") as u8,
            o.int("rate") as u32,
            312,
            Some(family),
            streams,
            mapping.as_deref(),
        )
        .unwrap();
        assert_eq!(&from_caps.to_bytes(), header, "{channels} ch {rate} Hz");
        // Only channels and rate: the Vorbis layout, which is what opusenc writes up to 6
        // channels. For 8 channels opusenc maps GStreamer's 7.1 positions (rear before side)
        // to a different table, so the caps' channel-mapping is needed there.
        let minimal = opus::OpusHead::new(channels, rate, 312, None, None, None).unwrap();
        if channels <= 6 {
            assert_eq!(&minimal.to_bytes(), header, "{channels} ch {rate} Hz");
        } else {
            assert_ne!(minimal.channel_mapping, from_caps.channel_mapping);
        }
        // FFmpeg 9 sends the OpusHead verbatim.
        let tags = ffmpeg_flv(&ffmpeg, &mka);
        let ffmpeg_head = ex_body(&tags, 8, 0, b"Opus").expect("Opus SequenceStart");
        assert_eq!(&ffmpeg_head, header);
        // matroskademux gives the same OpusHead in its streamheader.
        let demuxed = pull(
            &format!(
                "filesrc location={} ! matroskademux ! appsink name=d sync=false",
                mka.display()
            ),
            &["d"],
        );
        assert_eq!(
            opus::OpusHead::from_streamheader(&demuxed[0].buffers_of("streamheader")).unwrap(),
            parsed
        );
    }
}

#[test]
fn flac_streaminfo_from_streamheaders_equals_ffmpeg() {
    if !require_elements(&["flacenc", "matroskamux", "matroskademux"]) {
        return;
    }
    let Some(ffmpeg) = ffmpeg9() else { return };
    let dir = TempDir::new("flac");
    for (channels, rate) in [(1, 44100), (2, 48000), (6, 96000)] {
        let mka = dir.join(format!("{channels}-{rate}.mka"));
        let launch = format!(
            "audiotestsrc num-buffers=5 ! audio/x-raw,rate={rate},channels={channels} ! flacenc \
             ! tee name=t t. ! queue ! appsink name=f sync=false \
             t. ! queue ! matroskamux ! filesink location={}",
            mka.display()
        );
        let pulled = pull(&launch, &["f"]);
        let f = &pulled[0];
        let info = flac::StreamInfo::from_streamheader(&f.buffers_of("streamheader")).unwrap();
        assert_eq!((info.sample_rate, info.channels), (rate, channels));
        assert_eq!(
            (f.int("rate") as u32, f.int("channels") as u8),
            (rate, channels)
        );
        assert_eq!(info.bits_per_sample, 16);
        let start = info.sequence_start();
        assert_eq!(&start[..8], b"fLaC\x80\x00\x00\x22");
        assert_eq!(flac::StreamInfo::from_codec_config(&start).unwrap(), info);
        // FFmpeg 9 sends the bare 34-byte STREAMINFO (not "fLaC" + block header, as the
        // E-RTMP spec and this crate do); the STREAMINFO itself is byte-identical.
        let tags = ffmpeg_flv(&ffmpeg, &mka);
        let theirs = ex_body(&tags, 8, 0, b"fLaC").expect("fLaC SequenceStart");
        assert_eq!(&start[8..], theirs.as_slice(), "{channels} ch {rate} Hz");
        let theirs = flac::StreamInfo::from_codec_config(&theirs).unwrap();
        assert_eq!(theirs, info);
        // matroskademux's layout ("fLaC", then one buffer per metadata block).
        let demuxed = pull(
            &format!(
                "filesrc location={} ! matroskademux ! appsink name=d sync=false",
                mka.display()
            ),
            &["d"],
        );
        assert_eq!(
            flac::StreamInfo::from_streamheader(&demuxed[0].buffers_of("streamheader")).unwrap(),
            theirs
        );
    }
}

#[test]
fn ac3_and_eac3_headers_equal_ac3parse_and_ffmpeg_channel_masks() {
    if !require_elements(&["avenc_ac3", "avenc_eac3", "ac3parse", "matroskamux"]) {
        return;
    }
    let Some(ffmpeg) = ffmpeg9() else { return };
    let dir = TempDir::new("ac3");
    for (encoder, fourcc, kind) in [
        ("avenc_ac3", b"ac-3", ac3::Kind::Ac3),
        ("avenc_eac3", b"ec-3", ac3::Kind::Eac3),
    ] {
        for (channels, rate) in [(1, 48000), (2, 44100), (3, 48000), (5, 32000), (6, 48000)] {
            let mka = dir.join(format!("{encoder}-{channels}-{rate}.mka"));
            let launch = format!(
                "audiotestsrc num-buffers=5 ! audio/x-raw,rate={rate},channels={channels} ! {encoder} \
                 ! ac3parse ! tee name=t t. ! queue ! appsink name=a sync=false \
                 t. ! queue ! matroskamux ! filesink location={}",
                mka.display()
            );
            let pulled = pull(&launch, &["a"]);
            let a = &pulled[0];
            let what = format!("{encoder} {channels} ch {rate} Hz");
            for (frame, _) in &a.buffers {
                let info = ac3::frame_info(frame).unwrap();
                assert_eq!(info.kind, kind, "{what}");
                assert_eq!(
                    (info.sample_rate, info.channels),
                    (rate, channels as u8),
                    "{what}"
                );
                assert_eq!(
                    (a.int("rate") as u32, a.int("channels") as u8),
                    (info.sample_rate, info.channels)
                );
                // ac3parse frames one syncframe per buffer; its size is the header's.
                assert_eq!(
                    ac3::parse_header(frame).unwrap().frame_size,
                    frame.len(),
                    "{what}"
                );
            }
            let ours = ac3::frame_info(&a.buffers[0].0).unwrap();
            let tags = ffmpeg_flv(&ffmpeg, &mka);
            if let Some(mc) = ex_body(&tags, 8, 4, fourcc) {
                // MultichannelConfig: order Native (1), channel count, 32-bit mask.
                assert_eq!(&mc[..2], &[1, channels as u8], "{what}");
                let mask = u32::from_be_bytes(mc[2..6].try_into().unwrap());
                assert_eq!(Some(mask), ours.channel_mask, "{what}");
            } else {
                assert!(channels <= 2, "{what}: FFmpeg 9 sent no MultichannelConfig");
            }
        }
    }
}

#[test]
fn mp3_headers_equal_mpegaudioparse() {
    if !require_elements(&["lamemp3enc", "mpegaudioparse"]) {
        return;
    }
    for (rate, channels) in [
        (44100, 2),
        (48000, 1),
        (32000, 2),
        (22050, 1),
        (24000, 2),
        (16000, 1),
        (11025, 2),
        (8000, 1),
    ] {
        let launch = format!(
            "audiotestsrc num-buffers=10 ! audio/x-raw,rate={rate},channels={channels} \
             ! lamemp3enc ! mpegaudioparse ! appsink name=m sync=false"
        );
        let pulled = pull(&launch, &["m"]);
        let m = &pulled[0];
        assert_eq!((m.int("rate"), m.int("channels")), (rate, channels));
        assert_eq!(m.int("layer"), 3);
        for (frame, _) in &m.buffers {
            let h = mp3::parse_header(frame).unwrap();
            assert_eq!(
                (h.sample_rate, h.channels, h.layer),
                (rate as u32, channels as u8, 3)
            );
            // mpegaudioparse frames one MPEG frame per buffer.
            assert_eq!(h.frame_size, Some(frame.len()), "{rate} Hz {channels} ch");
        }
    }
}
