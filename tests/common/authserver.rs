//! A scripted server implementing the Adobe and Limelight `connect` authentication flows:
//! every rejection closes the connection, and only the right password gets to publish.

use std::sync::mpsc::Receiver;
use std::time::Duration;

use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::auth::{adobe_query, llnw_query};

use super::scripted::{Next, ScriptedTcpServer, ServerPeer, command_of};

const LIMIT: Duration = Duration::from_secs(20);
pub const USER: &str = "bob";
pub const PASSWORD: &str = "s3cret";
pub const SALT: &str = "SALT42";
pub const CHALLENGE: &str = "CHAL77";
pub const OPAQUE: &str = "OPQ9";
pub const NONCE: &str = "NONCE5";

fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn reject(peer: &mut ServerPeer, txn: f64, description: &str) {
    peer.send_command(
        0,
        "_error",
        txn,
        Amf0Value::Null,
        vec![Amf0Value::object([
            ("level", Amf0Value::String("error".into())),
            (
                "code",
                Amf0Value::String("NetConnection.Connect.Rejected".into()),
            ),
            ("description", Amf0Value::String(description.into())),
        ])],
    );
}

/// What the server decides about a `connect` whose app is `app`.
pub enum Verdict {
    /// `_error` with this description, then close.
    Reject(String),
    /// Go on with the publish flow.
    Accept,
}

pub fn adobe_verdict(app: &str) -> Verdict {
    let query = app.split_once('?').map(|(_, q)| q).unwrap_or("");
    let prefix = "[ AccessManager.Reject ] : [ authmod=adobe ] : ";
    match (param(query, "authmod"), param(query, "response")) {
        (Some("adobe"), None) => Verdict::Reject(format!(
            "{prefix}?reason=needauth&user={USER}&salt={SALT}&challenge={CHALLENGE}&opaque={OPAQUE}"
        )),
        (Some("adobe"), Some(_)) => {
            let client_challenge = param(query, "challenge").unwrap_or_default();
            let expected = adobe_query(
                USER,
                PASSWORD,
                SALT,
                Some(CHALLENGE),
                Some(OPAQUE),
                client_challenge,
            );
            if query == expected {
                Verdict::Accept
            } else {
                Verdict::Reject(format!("{prefix}?reason=authfailed"))
            }
        }
        _ => Verdict::Reject(
            "[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ".into(),
        ),
    }
}

pub fn llnw_verdict(app: &str) -> Verdict {
    let query = app.split_once('?').map(|(_, q)| q).unwrap_or("");
    let prefix = "[ AccessManager.Reject ] : [ authmod=llnw ] : ";
    match (param(query, "authmod"), param(query, "response")) {
        (Some("llnw"), None) => Verdict::Reject(format!("{prefix}?reason=needauth&nonce={NONCE}")),
        (Some("llnw"), Some(_)) => {
            let cnonce = param(query, "cnonce").unwrap_or_default();
            if query == llnw_query(USER, PASSWORD, NONCE, "live", cnonce) {
                Verdict::Accept
            } else {
                Verdict::Reject(format!("{prefix}?reason=authfailed"))
            }
        }
        _ => Verdict::Reject(
            "[ AccessManager.Reject ] : [ code=403 need auth; authmod=llnw ] : ".into(),
        ),
    }
}

/// A server that judges every `connect` with `verdict` and records the apps it saw.
pub fn auth_server(
    verdict: fn(&str) -> Verdict,
) -> (ScriptedTcpServer, std::sync::mpsc::Receiver<String>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = ScriptedTcpServer::start_multi(LIMIT, 4, move |_, turn| {
        for m in &turn.new {
            let Some(cmd) = command_of(m).filter(|c| c.name == "connect") else {
                continue;
            };
            let app = cmd
                .command_object
                .get("app")
                .and_then(Amf0Value::as_str)
                .unwrap_or_default()
                .to_string();
            let _ = tx.send(app.clone());
            if let Verdict::Reject(description) = verdict(&app) {
                reject(turn.peer, cmd.transaction_id, &description);
                return Next::Close;
            }
        }
        turn.peer.answer_publish_flow(&turn.new, &[]);
        Next::Continue
    });
    (server, rx)
}
