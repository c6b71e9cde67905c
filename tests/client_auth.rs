//! Adobe (FMS/Wowza) and Limelight challenge-response authentication against a scripted server
//! that implements both flows: each rejection closes the connection, the client reconnects
//! with the next step, and only the right password gets to publish.

mod common;

use std::time::Duration;

use common::authserver::{PASSWORD, USER, adobe_verdict, auth_server, llnw_verdict};
use gstrtmpclient::rtmp::auth::AuthMod;
use gstrtmpclient::rtmp::{ClientOptions, Error, RtmpClient};

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
