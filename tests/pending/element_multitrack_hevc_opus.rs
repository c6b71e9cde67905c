#![cfg(feature = "gst")]
//! Issue 10's four-track check with HEVC and Opus (waits for the "video" and "audio" helpers'
//! codecs): the four-track Matroska file (`sink` HEVC, `video_1` H.264, `audio` AAC,
//! `audio_1` Opus) published to FFmpeg 9 listening arrives as four streams, each byte-identical
//! to its source track with the PTS the element was given, to the ms. Move this test into
//! tests/element_multitrack.rs (it uses the same imports and helpers) once `sink` takes
//! video/x-h265 and `audio_%u` takes audio/x-opus.

mod common;

use std::path::Path;
use std::time::Duration;

use common::ffmpeg9::{
    Ff9Listen, FrameMd5, Outputs, assert_all_streams_identical, decode_errors, ffmpeg9,
    framemd5_of_file,
};
use common::gstmedia_ertmp::{assert_element_accepts, demux, four_track_mkv};
use common::gstrun::run_to_eos;
use common::util::TempDir;

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
const SERVER_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// matroskademux's pads of the four-track file, in track (= FFmpeg stream) order, and the
/// element pads they feed.
const FOUR_TRACKS: [(&str, &str, &str); 4] = [
    ("video_0", "sink", "hevc"),
    ("video_1", "video_1", "h264"),
    ("audio_0", "audio", "aac"),
    ("audio_1", "audio_1", "opus"),
];

/// The element's pad template a pad name comes from.
fn template_of(pad: &str) -> &str {
    match pad {
        "sink" | "audio" => pad,
        p if p.starts_with("video_") => "video_%u",
        _ => "audio_%u",
    }
}

fn assert_decodes(ff: &Path, label: &str, srv: &Ff9Listen) {
    let errs = decode_errors(ff, srv.flv_path());
    assert!(
        errs.is_empty(),
        "{label}: the recording does not decode cleanly: {errs:?}"
    );
}

/// The four-track source: FFmpeg 9's packets and matroskademux's PTS per track.
fn four_track_source(ff: &Path, mkv: &Path) -> (FrameMd5, Vec<gst::Caps>, Vec<Vec<i64>>) {
    let file = framemd5_of_file(ff, mkv, &[]);
    let pads: Vec<&str> = FOUR_TRACKS.iter().map(|t| t.0).collect();
    let demuxed = demux(mkv, &pads);
    for (i, (pad, _, codec)) in FOUR_TRACKS.iter().enumerate() {
        assert_eq!(file.streams[i].codec_id, *codec, "track {i}");
        let sizes: Vec<usize> = file.stream_packets(i).iter().map(|p| p.size).collect();
        let ours: Vec<usize> = demuxed[i].buffers.iter().map(Vec::len).collect();
        assert_eq!(ours, sizes, "pad {pad} vs FFmpeg stream {i}");
    }
    assert!(file.has_reordered_pts(0), "the HEVC track has no B-frames");
    let caps = demuxed.iter().map(|d| d.caps.clone()).collect();
    let pts = demuxed.into_iter().map(|d| d.pts_ms).collect();
    (file, caps, pts)
}

#[test]
fn four_tracks_from_matroska_arrive_byte_identical_at_ffmpeg9() {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = four_track_mkv() else { return };
    let (file, caps, ref_pts) = four_track_source(&ff, &mkv);
    // A pad or codec the element lacks fails here, with that reason.
    for ((_, pad, _), caps) in FOUR_TRACKS.iter().zip(&caps) {
        assert_element_accepts(template_of(pad), caps);
    }
    let dir = TempDir::new("four-track");
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    let msgs = run_to_eos(
        &format!(
            "filesrc location={} ! matroskademux name=d \
             d.video_0 ! queue ! rtmpclientsink name=s sync=false location={} \
             d.video_1 ! queue ! s.video_1 \
             d.audio_0 ! queue ! s.audio \
             d.audio_1 ! queue ! s.audio_1",
            mkv.display(),
            srv.url()
        ),
        PUBLISH_TIMEOUT,
    );
    assert!(msgs.iter().any(|s| s.name() == "rtmp-publishing"));
    srv.finish(SERVER_EXIT_TIMEOUT);
    let got = srv.framemd5();
    assert_all_streams_identical("four-track", &file, &ref_pts, &got);
    assert_decodes(&ff, "four-track", &srv);
}

