//! RTMP URLs: `rtmp[s]://[user:pass@]host[:port]/app[/instance...]/stream[?query]`, parsed with
//! the `url` crate, plus the redaction that keeps stream keys and credentials out of logs, and the
//! Enhanced RTMP v2 reconnect-target resolution.

use super::error::{Error, Result};

/// Default port of `rtmp://`.
pub const DEFAULT_RTMP_PORT: u16 = 1935;
/// Default port of `rtmps://`.
pub const DEFAULT_RTMPS_PORT: u16 = 443;
/// What secrets are replaced with wherever they would be shown.
pub const REDACTED: &str = "****";

/// Transport of an RTMP URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP.
    Rtmp,
    /// TLS over TCP.
    Rtmps,
}

impl Scheme {
    /// The scheme as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Rtmp => "rtmp",
            Scheme::Rtmps => "rtmps",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Rtmp => DEFAULT_RTMP_PORT,
            Scheme::Rtmps => DEFAULT_RTMPS_PORT,
        }
    }
}

/// A parsed publishing URL.
///
/// The application is every path segment but the last; the stream name is the last segment with
/// the query string (tokens such as `?s_bl=...` belong to the stream key and pass through).
/// `Debug` and [`RtmpUrl::redacted`] never show the stream name, the credentials or the query.
#[derive(Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmp` or `rtmps`.
    pub scheme: Scheme,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port (default 1935, or 443 for `rtmps`).
    pub port: u16,
    /// Application, e.g. `live` or `app/instance` (percent-decoding is not applied).
    pub app: String,
    /// Stream name (the stream key), including any `?query`.
    pub stream: String,
    /// User name from the URL, if any.
    pub username: Option<String>,
    /// Password from the URL, if any.
    pub password: Option<String>,
}

impl std::fmt::Debug for RtmpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.redacted(), f)
    }
}

impl RtmpUrl {
    /// Parses an `rtmp://` or `rtmps://` URL. The error text never contains the stream key.
    pub fn parse(location: &str) -> Result<Self> {
        let parsed = url::Url::parse(location.trim()).map_err(|e| {
            Error::InvalidUrl(format!(
                "{e}; write it as rtmp://host[:port]/app/streamkey (or rtmps://...)."
            ))
        })?;
        let scheme = match parsed.scheme() {
            "rtmp" => Scheme::Rtmp,
            "rtmps" => Scheme::Rtmps,
            other => {
                return Err(Error::InvalidUrl(format!(
                    "unsupported scheme '{other}'; use rtmp:// or rtmps://."
                )));
            }
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => {
                return Err(Error::InvalidUrl(
                    "the URL has no host; write it as rtmp://host/app/streamkey.".into(),
                ));
            }
        };
        if host.is_empty() {
            return Err(Error::InvalidUrl(
                "the URL has no host; write it as rtmp://host/app/streamkey.".into(),
            ));
        }
        let port = parsed.port().unwrap_or(scheme.default_port());
        let mut segments: Vec<String> = parsed
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut query = parsed.query().map(str::to_string);
        // `rtmp://host/app?token=x/stream`: the query belongs to the application.
        if let Some((app_query, stream)) = query
            .as_deref()
            .and_then(|q| q.rsplit_once('/'))
            .filter(|_| segments.len() == 1)
        {
            segments[0] = format!("{}?{app_query}", segments[0]);
            segments.push(stream.to_string());
            query = None;
        }
        if segments.len() < 2 {
            return Err(Error::InvalidUrl(format!(
                "{} has no application and stream name; write it as {}://host/app/streamkey.",
                RedactedUrl::unparsed(location),
                scheme.as_str()
            )));
        }
        let (last, app_segments) = segments.split_last().expect("at least two segments");
        let mut stream = last.clone();
        if let Some(q) = query {
            stream.push('?');
            stream.push_str(&q);
        }
        let username = Some(parsed.username())
            .filter(|u| !u.is_empty())
            .map(percent_decode);
        let password = parsed.password().map(percent_decode);
        Ok(RtmpUrl {
            scheme,
            host,
            port,
            app: app_segments.join("/"),
            stream,
            username,
            password,
        })
    }

    /// `host:port` with IPv6 literals in brackets, for dialling and messages.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `tcUrl` sent in `connect`: `scheme://host:port/app` (no credentials, no stream key).
    pub fn tc_url(&self) -> String {
        format!(
            "{}://{}/{}",
            self.scheme.as_str(),
            self.authority(),
            self.app
        )
    }

    /// The URL as it may be shown: scheme, host, port and application, with the stream key,
    /// the credentials and query values as `****` (see [`RedactedUrl`]).
    pub fn redacted(&self) -> RedactedUrl {
        RedactedUrl {
            scheme: Some(self.scheme.as_str().to_string()),
            credentials: self.username.is_some() || self.password.is_some(),
            authority: self.authority(),
            app: redact_query(&self.app),
            stream: true,
        }
    }

    /// Every secret this URL carries (stream key, its query tokens, password), longest first, for
    /// [`RtmpUrl::redact_text`].
    pub fn secrets(&self) -> Vec<String> {
        let mut s = Vec::new();
        if !self.stream.is_empty() {
            s.push(self.stream.clone());
            if let Some((name, query)) = self.stream.split_once('?') {
                if !name.is_empty() {
                    s.push(name.to_string());
                }
                s.extend(
                    query
                        .split('&')
                        .filter_map(|kv| kv.split_once('=').map(|(_, v)| v))
                        .filter(|v| !v.is_empty())
                        .map(str::to_string),
                );
            }
        }
        if let Some(p) = self.password.as_ref().filter(|p| !p.is_empty()) {
            s.push(p.clone());
        }
        if let Some((_, q)) = self.app.split_once('?') {
            s.extend(
                q.split('&')
                    .filter_map(|kv| kv.split_once('=').map(|(_, v)| v))
                    .filter(|v| !v.is_empty())
                    .map(str::to_string),
            );
        }
        // Longest first, so a secret that contains another is replaced whole.
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        s.dedup();
        s
    }

    /// Masks this URL's secrets where a text that is not ours (a server's description) echoes
    /// them; see [`redact_secrets`] for which ones and where.
    pub fn redact_text(&self, text: &str) -> String {
        redact_secrets(text, &self.secrets())
    }

    /// Resolves an Enhanced RTMP v2 reconnect target against this URL's `tcUrl` (RFC 3986):
    /// `None` → the current `tcUrl`; an absolute URL as is; `//host/app` keeps our scheme;
    /// `/app` keeps scheme and authority; `app` is merged onto our `tcUrl`'s path.
    pub fn resolve_reconnect(&self, tc_url: Option<&str>) -> String {
        let base = self.tc_url();
        let Some(reference) = tc_url.map(str::trim).filter(|r| !r.is_empty()) else {
            return base;
        };
        let parsed_base = match url::Url::parse(&base) {
            Ok(b) => b,
            Err(_) => return base,
        };
        match parsed_base.join(reference) {
            Ok(joined) => joined.to_string(),
            Err(_) => base,
        }
    }
}

/// A URL as it may be shown in a log line, an error or a bus message: scheme, host, port and
/// application, with `****` for the stream key, the credentials (`****@`) and every query value
/// (`app?token=****`). It is built from the public parts only and holds no secret, so nothing
/// that formats it can leak one. Every URL the crate shows goes through this type.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl {
    /// `None` when the text did not even look like `scheme://...`.
    scheme: Option<String>,
    credentials: bool,
    authority: String,
    /// Application with its query values masked (may be empty).
    app: String,
    /// Whether a stream key (shown as `****`) follows the application.
    stream: bool,
}

impl RedactedUrl {
    /// A `location` (`rtmp://host/app/streamkey`), also one that does not parse: then only
    /// the scheme and host are kept.
    pub fn location(text: &str) -> Self {
        match RtmpUrl::parse(text) {
            Ok(u) => u.redacted(),
            Err(_) => Self::unparsed(text),
        }
    }

    /// A `tcUrl` (`rtmp://host:port/app[?query]`, no stream key), e.g. a reconnect target sent
    /// by a server: its query values may be tokens we do not know, so they are masked too.
    pub fn tc_url(text: &str) -> Self {
        let Ok(parsed) = url::Url::parse(text.trim()) else {
            return Self::unparsed(text);
        };
        let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
            return Self::unparsed(text);
        };
        let port = parsed.port().or(match parsed.scheme() {
            "rtmp" => Some(DEFAULT_RTMP_PORT),
            "rtmps" => Some(DEFAULT_RTMPS_PORT),
            _ => None,
        });
        let mut app = parsed.path().trim_matches('/').to_string();
        if let Some(q) = parsed.query() {
            app = redact_query(&format!("{app}?{q}"));
        }
        RedactedUrl {
            scheme: Some(parsed.scheme().to_string()),
            credentials: !parsed.username().is_empty() || parsed.password().is_some(),
            authority: match port {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            },
            app,
            stream: false,
        }
    }

    /// Keeps only the scheme and host of something that did not parse; the rest may be secret.
    fn unparsed(text: &str) -> Self {
        let text = text.trim();
        let Some((scheme, rest)) = text
            .split_once("://")
            .filter(|(s, _)| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
        else {
            return RedactedUrl {
                scheme: None,
                credentials: false,
                authority: String::new(),
                app: String::new(),
                stream: true,
            };
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((_, host)) => (true, host),
            None => (false, authority),
        };
        RedactedUrl {
            scheme: Some(scheme.to_string()),
            credentials,
            authority: host.to_string(),
            app: String::new(),
            stream: true,
        }
    }
}

impl std::fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(scheme) = &self.scheme else {
            return f.write_str(REDACTED);
        };
        write!(f, "{scheme}://")?;
        if self.credentials {
            write!(f, "{REDACTED}@")?;
        }
        f.write_str(&self.authority)?;
        if !self.app.is_empty() {
            write!(f, "/{}", self.app)?;
        }
        if self.stream {
            write!(f, "/{REDACTED}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// [`RedactedUrl::location`] as a string.
pub fn redact_location(location: &str) -> String {
    RedactedUrl::location(location).to_string()
}

/// `app?a=1&b` → `app?a=****&****`: parameter names stay visible, values (and bare parameters,
/// which may be tokens themselves) do not.
fn redact_query(app: &str) -> String {
    match app.split_once('?') {
        Some((name, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) => format!("{k}={REDACTED}"),
                    None if kv.is_empty() => String::new(),
                    None => REDACTED.to_string(),
                })
                .collect();
            format!("{name}?{}", params.join("&"))
        }
        None => app.to_string(),
    }
}

/// Shortest secret [`redact_secrets`] masks. Shorter ones (`e`, `test`, `live`) are ordinary
/// words or parts of them: masking them would garble every text and hide nothing.
pub const MIN_MASKED_SECRET: usize = 6;

/// The last resort for texts that are not ours and may echo a secret (a server's description):
/// replaces each of `secrets` (longest first) of at least [`MIN_MASKED_SECRET`] characters with
/// `****`, but only where it stands as a whole token, not inside a longer alphanumeric word.
/// URLs are never shown through this: they go through [`RedactedUrl`].
pub fn redact_secrets(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets
        .iter()
        .filter(|s| s.chars().count() >= MIN_MASKED_SECRET)
        .collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in sorted {
        if out.contains(s.as_str()) {
            out = mask_whole_tokens(&out, s);
        }
    }
    out
}

/// Replaces the occurrences of `secret` in `text` that have no alphanumeric neighbour.
fn mask_whole_tokens(text: &str, secret: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    while let Some(found) = text[done..].find(secret) {
        let start = done + found;
        let end = start + secret.len();
        out.push_str(&text[done..start]);
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if before.is_some_and(char::is_alphanumeric) || after.is_some_and(char::is_alphanumeric) {
            // Inside a longer word: keep one character and search on.
            let step = text[start..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[start..start + step]);
            done = start + step;
        } else {
            out.push_str(REDACTED);
            done = end;
        }
    }
    out.push_str(&text[done..]);
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_app_and_stream() {
        let u = RtmpUrl::parse("rtmp://example.com/live/key").unwrap();
        assert_eq!(u.scheme, Scheme::Rtmp);
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, 1935);
        assert_eq!(u.app, "live");
        assert_eq!(u.stream, "key");
        assert_eq!(u.tc_url(), "rtmp://example.com:1935/live");

        let u = RtmpUrl::parse("rtmp://h/live?token=abc123/key").unwrap();
        assert_eq!(u.app, "live?token=abc123");
        assert_eq!(u.stream, "key");
        assert_eq!(
            u.redacted().to_string(),
            "rtmp://h:1935/live?token=****/****"
        );
        assert_eq!(
            u.redact_text("tcUrl rtmp://h/live?token=abc123"),
            "tcUrl rtmp://h/live?token=****"
        );

        let u = RtmpUrl::parse("rtmp://h:1936/app/inst/key?s_bl=1&tok=abc").unwrap();
        assert_eq!(u.port, 1936);
        assert_eq!(u.app, "app/inst");
        assert_eq!(u.stream, "key?s_bl=1&tok=abc");
    }

    #[test]
    fn ipv6_and_rtmps_defaults() {
        let u = RtmpUrl::parse("rtmps://[::1]/rtmp/KEY").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, 443);
        assert_eq!(u.authority(), "[::1]:443");
        assert_eq!(u.tc_url(), "rtmps://[::1]:443/rtmp");
    }

    #[test]
    fn credentials_are_parsed_and_redacted() {
        let u = RtmpUrl::parse("rtmp://bob:s%40cret@host/live/streamkey?token=xyz123").unwrap();
        assert_eq!(u.username.as_deref(), Some("bob"));
        assert_eq!(u.password.as_deref(), Some("s@cret"));
        let r = u.redacted().to_string();
        assert_eq!(r, "rtmp://****@host:1935/live/****");
        assert_eq!(format!("{u:?}"), r);
        assert_eq!(format!("{:?}", u.redacted()), r);
        let t = u.redact_text("rejected streamkey?token=xyz123 and s@cret; token xyz123");
        assert_eq!(t, "rejected **** and ****; token ****");
    }

    #[test]
    fn rejects_bad_urls_without_leaking() {
        for bad in [
            "http://host/live/s3cr3t",
            "rtmp://host/s3cr3t",
            "rtmp:///live/s3cr3t",
            "not a url s3cr3t",
            "rtmp://host:99999/live/s3cr3t",
        ] {
            let e = RtmpUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cr3t"), "{e}");
            // A sentence that says how to write the URL.
            assert!(e.ends_with('.') && e.contains("rtmp"), "{e}");
        }
        assert_eq!(
            redact_location("rtmp://u:p@h/onlyone"),
            "rtmp://****@h/****"
        );
        assert_eq!(redact_location("secretkey"), "****");
        assert_eq!(redact_location("rtmp:/ /h/live/secretkey"), "****");
    }

    #[test]
    fn redacted_url_shows_scheme_host_port_and_app_only() {
        for (location, shown) in [
            ("rtmp://h/live/e", "rtmp://h:1935/live/****"),
            (
                "rtmps://[::1]:8443/app/inst/k?s_bl=1",
                "rtmps://[::1]:8443/app/inst/****",
            ),
            (
                "rtmp://bob:pw@h/live?token=abc&flag/key",
                "rtmp://****@h:1935/live?token=****&****/****",
            ),
            ("rtmp://:pw@h/live/key", "rtmp://****@h:1935/live/****"),
        ] {
            assert_eq!(RedactedUrl::location(location).to_string(), shown);
        }
        // Something that does not parse keeps scheme and host only.
        assert_eq!(
            RedactedUrl::location("rtmp://u:p@h:99999/live/key").to_string(),
            "rtmp://****@h:99999/****"
        );
    }

    #[test]
    fn redacted_tc_url_masks_tokens_we_do_not_know() {
        // A reconnect target from the server: its token is not one of ours.
        for (tc_url, shown) in [
            ("rtmp://edge.example/live", "rtmp://edge.example:1935/live"),
            ("rtmps://edge.example/live", "rtmps://edge.example:443/live"),
            (
                "rtmp://u:p@edge:1936/app?auth=NEWTOKEN&x=1",
                "rtmp://****@edge:1936/app?auth=****&x=****",
            ),
            (
                "rtmp://[2001:db8::1]/app/inst",
                "rtmp://[2001:db8::1]:1935/app/inst",
            ),
            ("//no-scheme/app?t=1", "****"),
        ] {
            let r = RedactedUrl::tc_url(tc_url).to_string();
            assert_eq!(r, shown);
            assert!(!r.contains("NEWTOKEN"));
        }
    }

    #[test]
    fn the_text_mask_takes_whole_tokens_of_six_characters_or_more() {
        let secrets = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Short secrets are never masked: they are ordinary words or parts of them.
        let text = "Could not connect to 127.0.0.1:1: connection refused; RTMP handshake";
        assert_eq!(
            redact_secrets(text, &secrets(&["e", "k", "test", "live", "demo", "conne"])),
            text
        );
        // A whole token is masked wherever it stands between non-alphanumerics.
        assert_eq!(
            redact_secrets(
                "key s3cr3tK in /live/s3cr3tK?x, (s3cr3tK).",
                &secrets(&["s3cr3tK"])
            ),
            "key **** in /live/****?x, (****)."
        );
        // Inside a longer word it is left alone.
        assert_eq!(
            redact_secrets("xs3cr3tK s3cr3tKy s3cr3tK", &secrets(&["s3cr3tK"])),
            "xs3cr3tK s3cr3tKy ****"
        );
        // The longest secret wins, whatever the order given; non-ASCII neighbours are fine.
        assert_eq!(
            redact_secrets(
                "«abcdef?tok=123456» abcdef",
                &secrets(&["abcdef", "abcdef?tok=123456"])
            ),
            "«****» ****"
        );
        assert_eq!(redact_secrets("", &secrets(&["abcdef"])), "");
    }

    #[test]
    fn redact_text_masks_long_url_secrets_only() {
        let u = RtmpUrl::parse("rtmp://bob:hunter22@h/live/e?token=t0k3n99").unwrap();
        assert_eq!(
            u.redact_text("e said hunter22 and t0k3n99 for e?token=t0k3n99"),
            "e said **** and **** for ****"
        );
    }

    #[test]
    fn resolves_the_four_reconnect_shapes() {
        let u = RtmpUrl::parse("rtmp://origin.example:1935/live/key").unwrap();
        assert_eq!(u.resolve_reconnect(None), "rtmp://origin.example:1935/live");
        assert_eq!(
            u.resolve_reconnect(Some("rtmp://foo.mydomain.com:1935/realtimeapp")),
            "rtmp://foo.mydomain.com:1935/realtimeapp"
        );
        assert_eq!(
            u.resolve_reconnect(Some("//192.0.2.0/realtimeapp")),
            "rtmp://192.0.2.0/realtimeapp"
        );
        assert_eq!(
            u.resolve_reconnect(Some("/realtimeapp")),
            "rtmp://origin.example:1935/realtimeapp"
        );
        let nested = RtmpUrl::parse("rtmp://o:1935/app/inst/key").unwrap();
        assert_eq!(
            nested.resolve_reconnect(Some("realtimeapp")),
            "rtmp://o:1935/app/realtimeapp"
        );
    }
}
