#![cfg(feature = "gst")]
//! Bad HEVC, AV1 and VP9 input into `rtmpclientsink` never panics: caps with a configuration
//! record that is too short are refused with a clear error, a keyframe that can never be
//! decoded (no parameter sets / sequence header anywhere) is a clear error, and truncated or
//! garbage buffers are dropped and counted, then an error once nothing valid arrives.

mod common;

use common::harness::{buffer, harness_without_answer as harness};
use gst::prelude::*;

fn wait_error(bus: &gst::Bus) -> gst::glib::Error {
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(2),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .expect("an error message");
    match msg.view() {
        gst::MessageView::Error(e) => e.error(),
        other => panic!("not an error: {other:?}"),
    }
}

fn bad_buffers(h: &gst_check::Harness) -> u64 {
    h.element()
        .unwrap()
        .property::<gst::Structure>("stats")
        .get::<u64>("bad-buffers")
        .unwrap()
}

/// Pushes `garbage` until the element gives up; checks the error names the codec.
fn garbage_until_error(h: &mut gst_check::Harness, bus: &gst::Bus, garbage: &[u8], codec: &str) {
    let mut last = Ok(gst::FlowSuccess::Ok);
    for i in 0..30 {
        last = h.push(buffer(garbage.to_vec(), 1000 + i, true));
        if last.is_err() {
            break;
        }
    }
    assert_eq!(last, Err(gst::FlowError::Error));
    let err = wait_error(bus);
    assert!(err.matches(gst::StreamError::Decode), "{err:?}");
    assert!(
        err.message()
            .contains(&format!("consecutive invalid {codec} buffers")),
        "{err}"
    );
}

/// One keyframe with `caps` that can never be decoded: a Format error whose message starts
/// with `starts`.
fn keyframe_refused(caps: &str, keyframe: Vec<u8>, starts: &str) {
    let (mut h, bus, _l) = harness();
    h.set_src_caps_str(caps);
    let r = h.push(buffer(keyframe, 0, false));
    assert_eq!(r, Err(gst::FlowError::Error));
    let err = wait_error(&bus);
    assert!(err.matches(gst::StreamError::Format), "{err:?}");
    assert!(err.message().starts_with(starts), "{err}");
}

/// A caps event whose codec_data the element refuses: the caps are not accepted, with a
/// clear error.
fn refused_caps(caps: &str, codec_data: &[u8]) -> gst::glib::Error {
    let (mut h, bus, _l) = harness();
    let mut caps: gst::Caps = caps.parse().unwrap();
    caps.get_mut()
        .unwrap()
        .set("codec_data", gst::Buffer::from_slice(codec_data.to_vec()));
    h.set_src_caps(caps);
    // The caps event fails; the next buffer is not-negotiated or an error.
    let r = h.push(buffer(vec![0, 0, 0, 1, 0x26, 1, 0xaf], 0, false));
    assert!(r.is_err(), "{r:?}");
    wait_error(&bus)
}

#[test]
fn short_hvcc_and_av1c_are_refused_with_a_clear_error() {
    for cd in [&[1u8, 2, 3][..], &[1u8; 22]] {
        let err = refused_caps("video/x-h265, stream-format=hvc1, alignment=au", cd);
        assert!(err.matches(gst::StreamError::Format), "{err:?}");
        assert!(err.message().contains("Invalid codec_data"), "{err}");
        assert!(err.message().contains("hvcC"), "{err}");
    }
    for cd in [&[0x81u8, 0][..], &[0x80, 0, 0, 0]] {
        let err = refused_caps("video/x-av1, stream-format=obu-stream, alignment=tu", cd);
        assert!(err.matches(gst::StreamError::Format), "{err:?}");
        assert!(err.message().contains("Invalid codec_data"), "{err}");
        assert!(err.message().contains("av1C"), "{err}");
    }
}

#[test]
fn hevc_keyframe_without_parameter_sets_is_a_clear_error() {
    // An IDR_W_RADL slice only.
    keyframe_refused(
        "video/x-h265, stream-format=byte-stream, alignment=au",
        vec![0, 0, 0, 1, 0x26, 0x01, 0xaf, 0x10],
        "HEVC stream has no VPS/SPS/PPS before its first keyframe",
    );
}

#[test]
fn av1_keyframe_without_sequence_header_is_a_clear_error() {
    // Temporal delimiter, then a frame OBU of a shown key frame.
    keyframe_refused(
        "video/x-av1, stream-format=obu-stream, alignment=tu",
        vec![0x12, 0x00, 0x32, 0x02, 0x10, 0x00],
        "AV1 stream has no sequence header OBU before its first keyframe",
    );
}

#[test]
fn truncated_and_garbage_hevc_is_counted_then_an_error() {
    let (mut h, bus, _l) = harness();
    // hvc1 with 4-byte lengths (a valid hvcC of x265 output).
    let hvcc = hex(
        "0101600000009000000000003ff000fcfdf8f800000f03200001001840010c01ffff01600000030090000003000003003f959409210001003042010101600000030090000003000003003fa0208316595952930bffc00040005a830303020000030002000003003c1022000100064401c073c089",
    );
    let mut caps: gst::Caps = "video/x-h265, stream-format=hvc1, alignment=au"
        .parse()
        .unwrap();
    caps.get_mut()
        .unwrap()
        .set("codec_data", gst::Buffer::from_slice(hvcc));
    h.set_src_caps(caps);
    let idr = vec![0, 0, 0, 4, 0x26, 0x01, 0xaf, 0x10];
    assert_eq!(
        h.push(buffer(idr.clone(), 0, false)),
        Ok(gst::FlowSuccess::Ok)
    );
    // A length running past the end, and an empty buffer: dropped and counted.
    assert_eq!(
        h.push(buffer(vec![0, 0, 0, 40, 0x02, 0x01, 0xd0], 33, true)),
        Ok(gst::FlowSuccess::Ok)
    );
    assert_eq!(h.push(buffer(vec![], 66, true)), Ok(gst::FlowSuccess::Ok));
    assert_eq!(bad_buffers(&h), 2);
    assert_eq!(h.push(buffer(idr, 100, false)), Ok(gst::FlowSuccess::Ok));
    garbage_until_error(&mut h, &bus, &[0xff, 0xff, 0xff, 0xff, 0x01], "HEVC");
}

#[test]
fn garbage_obus_are_counted_then_an_error() {
    let (mut h, bus, _l) = harness();
    h.set_src_caps_str("video/x-av1, stream-format=obu-stream, alignment=tu");
    // TD, sequence header (av1enc 64x48), key frame.
    let mut key = vec![0x12, 0x00];
    key.extend(hex("0a0b00000002aff7f036be4010"));
    key.extend([0x32, 0x02, 0x10, 0x00]);
    assert_eq!(h.push(buffer(key, 0, false)), Ok(gst::FlowSuccess::Ok));
    // Forbidden bit set; an OBU size past the end; temporal delimiters only.
    for (i, bad) in [vec![0x80u8, 0x00], vec![0x32, 0x7f, 0x10], vec![0x12, 0x00]]
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            h.push(buffer(bad, 33 * (i as u64 + 1), true)),
            Ok(gst::FlowSuccess::Ok)
        );
    }
    assert_eq!(bad_buffers(&h), 3);
    garbage_until_error(&mut h, &bus, &[0x80, 0x00, 0x01], "AV1");
}

#[test]
fn garbage_vp9_is_counted_then_an_error() {
    let (mut h, bus, _l) = harness();
    h.set_src_caps_str("video/x-vp9, width=160, height=96");
    let mut key = hex("824983422009f005f60038241c184200");
    key.resize(200, 0x55);
    assert_eq!(h.push(buffer(key, 0, false)), Ok(gst::FlowSuccess::Ok));
    // Empty; a keyframe whose sync code is wrong.
    assert_eq!(h.push(buffer(vec![], 33, true)), Ok(gst::FlowSuccess::Ok));
    assert_eq!(
        h.push(buffer(vec![0x82, 0x49, 0x83, 0x00, 0x00], 66, true)),
        Ok(gst::FlowSuccess::Ok)
    );
    assert_eq!(bad_buffers(&h), 2);
    garbage_until_error(&mut h, &bus, &[0x82, 0x00, 0x00, 0x00], "VP9");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
