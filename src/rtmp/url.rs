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
/// `Debug` and [`RtmpUrl::redacted`] never show the stream name, the password or the query.
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
        f.write_str(&self.redacted())
    }
}

impl RtmpUrl {
    /// Parses an `rtmp://` or `rtmps://` URL. The error text never contains the stream key.
    pub fn parse(location: &str) -> Result<Self> {
        let parsed = url::Url::parse(location.trim()).map_err(|e| {
            Error::InvalidUrl(format!(
                "{e}; expected rtmp://host[:port]/app/stream (or rtmps://)"
            ))
        })?;
        let scheme = match parsed.scheme() {
            "rtmp" => Scheme::Rtmp,
            "rtmps" => Scheme::Rtmps,
            other => {
                return Err(Error::InvalidUrl(format!(
                    "unsupported scheme '{other}', use rtmp:// or rtmps://"
                )));
            }
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(Error::InvalidUrl("the URL has no host".into())),
        };
        if host.is_empty() {
            return Err(Error::InvalidUrl("the URL has no host".into()));
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
                "{} has no application and stream name; expected {}://host/app/stream",
                redact_unparsed(location),
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

    /// The URL with the stream name, password and query shown as `****`, safe for logs.
    pub fn redacted(&self) -> String {
        let user = match &self.username {
            Some(u) => format!("{u}:{REDACTED}@"),
            None => String::new(),
        };
        format!(
            "{}://{}{}/{}/{}",
            self.scheme.as_str(),
            user,
            self.authority(),
            redact_query(&self.app),
            REDACTED
        )
    }

    /// Every secret this URL carries (stream key, its query tokens, password), for redaction of
    /// text that may echo them (server descriptions, I/O errors).
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
                        .filter(|v| v.len() >= 3)
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
                    .filter(|v| v.len() >= 3)
                    .map(str::to_string),
            );
        }
        // Longest first, so a secret that contains another is replaced whole.
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        s.dedup();
        s
    }

    /// Replaces every secret of this URL found in `text` with `****`.
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

/// Redacts a location string that may not even parse: everything after the second path slash
/// (the stream key), the query and any password are replaced by `****`.
pub fn redact_location(location: &str) -> String {
    match RtmpUrl::parse(location) {
        Ok(u) => u.redacted(),
        Err(_) => redact_unparsed(location),
    }
}

/// Keeps only the scheme and host of something that did not parse; the rest may be secret.
fn redact_unparsed(location: &str) -> String {
    match location.find("://") {
        Some(i) => {
            let rest = &location[i + 3..];
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            let authority = match authority.rsplit_once('@') {
                Some((_, host)) => format!("{REDACTED}@{host}"),
                None => authority.to_string(),
            };
            format!("{}://{authority}/{REDACTED}", &location[..i])
        }
        None => REDACTED.to_string(),
    }
}

/// `app?a=1&b=2` → `app?a=****&b=****`: parameter names stay visible, values do not.
fn redact_query(app: &str) -> String {
    match app.split_once('?') {
        Some((name, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) => format!("{k}={REDACTED}"),
                    None => kv.to_string(),
                })
                .collect();
            format!("{name}?{}", params.join("&"))
        }
        None => app.to_string(),
    }
}

/// Replaces each of `secrets` (longest first) found in `text` with `****`.
pub fn redact_secrets(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
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
        assert!(!u.redacted().contains("abc123"));
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
        let r = u.redacted();
        assert!(!r.contains("s@cret") && !r.contains("streamkey") && !r.contains("xyz123"));
        assert_eq!(r, "rtmp://bob:****@host:1935/live/****");
        assert_eq!(format!("{u:?}"), r);
        let t = u.redact_text("rejected streamkey?token=xyz123 and s@cret; token xyz123");
        assert_eq!(t, "rejected **** and ****; token ****");
    }

    #[test]
    fn rejects_bad_urls_without_leaking() {
        for bad in [
            "http://host/live/key",
            "rtmp://host/onlyone",
            "rtmp:///live/key",
            "not a url",
        ] {
            let e = RtmpUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("key") || !bad.contains("key"), "{e}");
        }
        assert_eq!(
            redact_location("rtmp://u:p@h/onlyone"),
            "rtmp://****@h/****"
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
