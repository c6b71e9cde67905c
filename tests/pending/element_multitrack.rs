//! Issue 10's multitrack publish checks against FFmpeg 9 listening: the four-track Matroska
//! file (`sink` HEVC, `video_1` H.264, `audio` AAC, `audio_1` Opus) arrives as four streams,
//! each byte-identical to its source track with the PTS the element was given, to the ms; and
//! a live three-rendition H.264 ladder plus AAC arrives as 3 video + 1 audio streams, every
//! frame, all decodable. FFmpeg 9 publishing the same file passes the same checks.

mod common;

use std::path::Path;
use std::time::Duration;

use common::ffmpeg9::{
    self, Ff9Listen, FrameMd5, Outputs, assert_all_streams_identical, decode_errors,
    decoded_frames, ffmpeg9, framemd5_of_file,
};
use common::gstmedia_ertmp::{
    assert_element_accepts, demux, four_track_mkv, require_elements, run_to_eos,
};
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

/// The measurement: FFmpeg 9 publishing the four-track file
/// (`-i F -map 0 -c copy -copyinkf -f flv rtmp://...`) to FFmpeg 9 listening passes the same
/// checks, against its own reading of the file.
#[test]
fn reference_ffmpeg9_publishes_the_four_tracks_byte_identical() {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = four_track_mkv() else { return };
    let file = framemd5_of_file(&ff, &mkv, &[]);
    let ref_pts: Vec<Vec<i64>> = (0..file.streams.len()).map(|i| file.pts_ms(i)).collect();
    let dir = TempDir::new("four-track-ref");
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    ffmpeg9::publish(&ff, &mkv, &srv.url());
    srv.finish(SERVER_EXIT_TIMEOUT);
    let got = srv.framemd5();
    assert_eq!(got.streams.len(), 4);
    assert_all_streams_identical("FFmpeg 9 four-track", &file, &ref_pts, &got);
    assert_decodes(&ff, "FFmpeg 9 four-track", &srv);
}

/// A Twitch-style ladder: one live source, three x264enc renditions on `sink`, `video_1`,
/// `video_2`, AAC on `audio`.
#[test]
fn live_ladder_of_three_renditions_and_aac_every_frame_decodes() {
    let Some(ff) = ffmpeg9() else { return };
    if !require_elements(&["x264enc", "avenc_aac", "videoscale", "tee"]) {
        return;
    }
    const FRAMES: usize = 60;
    const RUNGS: [(&str, u32, u32); 3] = [
        ("sink", 1280, 720),
        ("video_1", 854, 480),
        ("video_2", 640, 360),
    ];
    let h264 = gst::Caps::builder("video/x-h264")
        .field("stream-format", "avc")
        .field("alignment", "au")
        .build();
    for (pad, _, _) in RUNGS {
        assert_element_accepts(template_of(pad), &h264);
    }
    let dir = TempDir::new("ladder");
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    let mut launch = format!(
        "rtmpclientsink name=s location={} \
         videotestsrc is-live=true num-buffers={FRAMES} ! \
         video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! tee name=t \
         audiotestsrc is-live=true num-buffers=94 samplesperbuffer=1024 ! \
         audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac ! queue ! s.audio",
        srv.url()
    );
    for (pad, w, h) in RUNGS {
        launch.push_str(&format!(
            " t. ! queue ! videoscale ! video/x-raw,width={w},height={h} ! \
             x264enc speed-preset=ultrafast tune=zerolatency key-int-max=30 bitrate=800 ! \
             video/x-h264,stream-format=avc,alignment=au ! queue ! s.{pad}"
        ));
    }
    run_to_eos(&launch, PUBLISH_TIMEOUT);
    srv.finish(SERVER_EXIT_TIMEOUT);
    let got = srv.framemd5();
    assert_eq!(
        got.streams.len(),
        4,
        "3 video + 1 audio streams expected: {:?}",
        got.streams
    );
    let decoded = decoded_frames(&ff, srv.flv_path());
    for (pad, w, h) in RUNGS {
        let s = got.stream("h264", Some((w, h))).index;
        assert_eq!(
            got.stream_packets(s).len(),
            FRAMES,
            "{pad} {w}x{h}: packets"
        );
        let d = decoded.stream("rawvideo", Some((w, h))).index;
        assert_eq!(
            decoded.stream_packets(d).len(),
            FRAMES,
            "{pad} {w}x{h}: decoded frames"
        );
    }
    let a = got.stream("aac", None).index;
    assert!(
        got.stream_packets(a).len() >= 90,
        "{} AAC packets",
        got.stream_packets(a).len()
    );
    assert_decodes(&ff, "ladder", &srv);
}
