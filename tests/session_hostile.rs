//! Hostile server input: thousands of random and mutated server byte streams fed to the
//! publishing core. Every outcome must be `Ok` or `Err`, never a panic, and what the core keeps
//! buffered must stay within its named limits.

#[path = "common/scripted.rs"]
mod scripted;

use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::chunk::{ChunkBatch, MAX_BUFFERED_BYTES, MAX_MESSAGE_SIZE};
use gstrtmpclient::rtmp::message::{UserControl, msg_type};
use gstrtmpclient::rtmp::session::{PublishConfig, Session};
use gstrtmpclient::rtmp::url::RtmpUrl;
use scripted::ServerPeer;

/// Deterministic xorshift64* so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn new_session() -> Session {
    Session::new(PublishConfig::new(
        RtmpUrl::parse("rtmp://127.0.0.1/live/key").unwrap(),
    ))
}

/// A realistic server byte stream: handshake, the whole publish flow, then assorted messages.
fn valid_server_stream() -> Vec<u8> {
    let mut client = new_session();
    let mut server = ServerPeer::new();
    let mut down_all = Vec::new();
    for _ in 0..50 {
        let mut batch = ChunkBatch::new();
        client.drain_transmit(&mut batch);
        let msgs = server.feed(&batch.to_vec());
        server.answer_publish_flow(&msgs, &[("capsEx", Amf0Value::Number(1.0))]);
        let down = server.take_output();
        if down.is_empty() {
            break;
        }
        client.handle_input(&down).expect("valid flow");
        down_all.extend_from_slice(&down);
    }
    server.set_chunk_size(300);
    server.send_user_control(UserControl::PingRequest(5));
    server.send_status(
        1,
        "status",
        "NetStream.Publish.Idle",
        &"d".repeat(700),
        vec![],
    );
    server.send(2, 0, msg_type::WINDOW_ACK_SIZE, 0, &100u32.to_be_bytes());
    server.send(7, 0x0100_0000, msg_type::AUDIO, 1, &[0xAF; 900]);
    server.send_status(
        0,
        "status",
        "NetConnection.Connect.ReconnectRequest",
        "",
        vec![("tcUrl", Amf0Value::String("/other".into()))],
    );
    down_all.extend_from_slice(&server.take_output());
    down_all
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(v.len());
            v[i] = rng.next() as u8;
        }
        2 => v.truncate(rng.below(v.len())),
        3 => {
            let i = rng.below(v.len());
            let extra: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            v.splice(i..i, extra);
        }
        4 => {
            // Duplicate a region (replayed chunks).
            let a = rng.below(v.len());
            let b = (a + rng.below(512)).min(v.len());
            let dup = v[a..b].to_vec();
            v.splice(b..b, dup);
        }
        _ => {
            // Keep the handshake, randomize what follows.
            let keep = (1 + 1536 * 2).min(v.len());
            v.truncate(keep);
            v.extend((0..rng.below(4096)).map(|_| rng.next() as u8));
        }
    }
    v
}

#[test]
fn ten_thousand_hostile_streams_never_panic_and_stay_bounded() {
    let base = valid_server_stream();
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let mut outcomes = [0usize; 2];
    for round in 0..10_000 {
        let input = if round % 10 == 9 {
            (0..rng.below(8192)).map(|_| rng.next() as u8).collect()
        } else {
            mutate(&mut rng, &base)
        };
        let mut session = new_session();
        let mut rest = &input[..];
        let mut failed = false;
        while !rest.is_empty() {
            let n = 1 + rng.below(2048).min(rest.len() - 1);
            let (now, later) = rest.split_at(n);
            rest = later;
            if session.handle_input(now).is_err() {
                failed = true;
                break;
            }
            while session.poll_event().is_some() {}
            let mut batch = ChunkBatch::new();
            session.drain_transmit(&mut batch);
            assert!(
                session.buffered_bytes()
                    <= MAX_BUFFERED_BYTES + MAX_MESSAGE_SIZE as usize + input.len(),
                "round {round}: {} bytes buffered",
                session.buffered_bytes()
            );
        }
        outcomes[usize::from(failed)] += 1;
    }
    // Both paths were exercised.
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}
