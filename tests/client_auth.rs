//! Adobe (FMS/Wowza) and Limelight challenge-response authentication against a scripted server
//! that implements both flows: each rejection closes the connection, the client reconnects
//! with the next step, and only the right password gets to publish.

#[path = "common/scripted.rs"]
mod scripted;

use std::time::Duration;

use gstrtmpclient::rtmp::amf0::Amf0Value;
use gstrtmpclient::rtmp::auth::{AuthMod, adobe_query, llnw_query};
use gstrtmpclient::rtmp::{ClientOptions, Error, RtmpClient};
use scripted::{Next, ScriptedTcpServer, ServerPeer, command_of};

const LIMIT: Duration = Duration::from_secs(20);
const USER: &str = "bob";
const PASSWORD: &str = "s3cret";
const SALT: &str = "SALT42";
const CHALLENGE: &str = "CHAL77";
const OPAQUE: &str = "OPQ9";
const NONCE: &str = "NONCE5";

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
enum Verdict {
    Reject(String),
    Accept,
}

fn adobe_verdict(app: &str) -> Verdict {
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

fn llnw_verdict(app: &str) -> Verdict {
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
fn auth_server(
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

fn options(mode: AuthMod, password: &str) -> ClientOptions {
    ClientOptions {
        authmod: mode,
        username: Some(USER.into()),
        password: Some(password.into()),
        timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    }
}

#[test]
fn adobe_auth_with_the_right_password_publishes() {
    let (server, apps) = auth_server(adobe_verdict);
    let client = RtmpClient::connect_with_options(&server.url(), &options(AuthMod::Auto, PASSWORD))
        .expect("authenticated publish");
    client.close().unwrap();
    let seen: Vec<String> = apps.try_iter().collect();
    assert_eq!(seen.len(), 3, "three connections: {seen:?}");
    assert_eq!(seen[0], "live");
    assert_eq!(seen[1], "live?authmod=adobe&user=bob");
    assert!(seen[2].contains("&response=") && seen[2].ends_with("&opaque=OPQ9"));
    assert!(
        seen.iter().all(|a| !a.contains(PASSWORD)),
        "the password never travels"
    );
    drop(server);
}

#[test]
fn adobe_auth_with_known_mode_skips_the_first_round_trip() {
    let (server, apps) = auth_server(adobe_verdict);
    let url = format!(
        "rtmp://{USER}:{PASSWORD}@127.0.0.1:{}/live/key",
        server.port
    );
    let opts = ClientOptions {
        authmod: AuthMod::Adobe,
        ..ClientOptions::default()
    };
    RtmpClient::connect_with_options(&url, &opts)
        .expect("credentials from the URL")
        .close()
        .unwrap();
    assert_eq!(apps.try_iter().count(), 2);
    drop(server);
}

#[test]
fn adobe_auth_with_a_wrong_password_fails_clearly() {
    let (server, _) = auth_server(adobe_verdict);
    let err = RtmpClient::connect_with_options(&server.url(), &options(AuthMod::Auto, "nope"))
        .expect_err("wrong password");
    assert!(matches!(err, Error::AuthenticationFailed(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("authentication failed") && text.contains("wrong password"),
        "{text}"
    );
    assert!(!text.contains("nope"));
    drop(server);
}

#[test]
fn llnw_auth_with_the_right_password_publishes() {
    let (server, apps) = auth_server(llnw_verdict);
    RtmpClient::connect_with_options(&server.url(), &options(AuthMod::Auto, PASSWORD))
        .expect("authenticated publish")
        .close()
        .unwrap();
    let seen: Vec<String> = apps.try_iter().collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[2].starts_with("live?authmod=llnw&user=bob&nonce=NONCE5&cnonce="));
    drop(server);
}

#[test]
fn llnw_auth_with_a_wrong_password_fails_clearly() {
    let (server, _) = auth_server(llnw_verdict);
    let err = RtmpClient::connect_with_options(&server.url(), &options(AuthMod::Llnw, "nope"))
        .expect_err("wrong password");
    assert!(matches!(err, Error::AuthenticationFailed(_)), "{err:?}");
    drop(server);
}

#[test]
fn missing_credentials_or_refused_mode_are_clear_errors() {
    let (server, _) = auth_server(adobe_verdict);
    let err = RtmpClient::connect_with_options(&server.url(), &ClientOptions::default())
        .expect_err("no credentials");
    assert!(err.to_string().contains("user name and password"), "{err}");
    drop(server);

    let (server, _) = auth_server(adobe_verdict);
    let err = RtmpClient::connect_with_options(&server.url(), &options(AuthMod::None, PASSWORD))
        .expect_err("authmod none");
    assert!(err.to_string().contains("authmod is none"), "{err}");
    drop(server);
}
