#![cfg(feature = "gst")]
//! The library publishes several tracks: `RtmpClient::send_sequence_start` and
//! `RtmpClient::send_frame` with a track id put a four-track file (two H.264, two AAC) on the
//! wire, tracks >= 1 as Multitrack OneTrack, and FFmpeg 9 listening receives four streams, each
//! byte-identical to the file's, with its PTS to the ms.

mod common;

use std::time::Duration;

use common::ffmpeg9::{
    Ff9Listen, Outputs, assert_all_streams_identical, ffmpeg9, framemd5_of_file,
};
use common::gstmedia_ertmp::{caps_buffer, demux, four_track_h264_aac_mkv};
use common::util::TempDir;
use gstrtmpclient::codec::Codec;
use gstrtmpclient::rtmp::RtmpClient;

/// matroskademux pads of the file in FFmpeg's stream order, the codec and track id each goes
/// out as.
const TRACKS: [(&str, Codec, u8); 4] = [
    ("video_0", Codec::H264, 0),
    ("video_1", Codec::H264, 1),
    ("audio_0", Codec::Aac, 0),
    ("audio_1", Codec::Aac, 1),
];

/// An AVC access unit (4-byte lengths) holds an IDR slice.
fn is_idr(mut au: &[u8]) -> bool {
    while au.len() > 4 {
        let len = u32::from_be_bytes([au[0], au[1], au[2], au[3]]) as usize;
        if au.len() < 4 + len || len == 0 {
            return false;
        }
        if au[4] & 0x1f == 5 {
            return true;
        }
        au = &au[4 + len..];
    }
    false
}

#[test]
fn rtmp_client_sends_frames_and_sequence_starts_on_tracks_byte_identical_at_ffmpeg9() {
    let Some(ff) = ffmpeg9() else { return };
    let Some(mkv) = four_track_h264_aac_mkv() else {
        return;
    };
    let file = framemd5_of_file(&ff, &mkv, &[]);
    let pads: Vec<&str> = TRACKS.iter().map(|t| t.0).collect();
    let demuxed = demux(&mkv, &pads);
    // Every packet with its DTS/PTS (FFmpeg's reading of the file, 1 ms time base), merged in
    // DTS order as a muxer sends them.
    let mut sends: Vec<(i64, usize, usize, i64)> = Vec::new();
    for (i, d) in demuxed.iter().enumerate() {
        assert_eq!(file.streams[i].tb, (1, 1000), "stream {i}");
        let packets = file.stream_packets(i);
        assert_eq!(packets.len(), d.buffers.len(), "stream {i}");
        for (k, p) in packets.iter().enumerate() {
            sends.push((p.dts, i, k, p.pts));
        }
    }
    sends.sort();
    let base = sends[0].0;
    let dir = TempDir::new("client-multitrack");
    let Some(mut srv) = Ff9Listen::start(dir.path(), Outputs::BOTH) else {
        return;
    };
    let mut client = RtmpClient::connect(&srv.url()).expect("connect");
    for (i, (_, codec, track)) in TRACKS.iter().enumerate() {
        let config = caps_buffer(&demuxed[i].caps, "codec_data").expect("codec_data");
        client
            .send_sequence_start(*track, *codec, 0, &config)
            .expect("sequence start");
    }
    for (dts, i, k, pts) in sends {
        let (_, codec, track) = TRACKS[i];
        let data = &demuxed[i].buffers[k];
        let key = codec == Codec::Aac || is_idr(data);
        let cts = i32::try_from(pts - dts).expect("cts");
        client
            .send_frame(track, codec, (dts - base) as u32, key, cts, data)
            .expect("frame");
    }
    client.close().expect("close");
    srv.finish(Duration::from_secs(10));
    let got = srv.framemd5();
    let ref_pts: Vec<Vec<i64>> = (0..4).map(|i| file.pts_ms(i)).collect();
    let (pairs, _) = assert_all_streams_identical("RtmpClient four tracks", &file, &ref_pts, &got);
    assert_eq!(pairs.len(), 4);
}
