//! The whole publish path over loopback: `RtmpClient::send_video` of 100 KB access units
//! (FLV header + chunking + vectored writes) into a server thread that reads and discards.

#[path = "../tests/common/scripted.rs"]
mod scripted;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gstrtmpclient::rtmp::RtmpClient;
use scripted::{Next, ScriptedTcpServer};

const FRAME: usize = 100 * 1024;

fn publish_loopback(c: &mut Criterion) {
    let server = ScriptedTcpServer::start(Duration::from_secs(600), |turn| {
        if turn.peer.answer_publish_flow(&turn.new, &[]) {
            Next::Discard
        } else {
            Next::Continue
        }
    });
    let mut client = RtmpClient::connect(&server.url()).expect("connect to the bench server");
    let frame: Vec<u8> = (0..FRAME).map(|i| i as u8).collect();
    let mut ts = 0u32;
    let mut group = c.benchmark_group("publish_loopback");
    group.throughput(Throughput::Bytes(FRAME as u64));
    group.bench_function("send_video_100k_chunk4096", |b| {
        b.iter(|| {
            ts = ts.wrapping_add(33);
            client
                .send_video(ts, false, black_box(&frame))
                .expect("send to the bench server");
        })
    });
    group.finish();
    client.close().expect("close");
    server.join();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = publish_loopback
}
criterion_main!(benches);
