//! [`AgentUrl`]: where the agent listens, parsed strictly, shown without
//! credentials.
//!
//! The URL keeps what the user wrote (userinfo included) because that is what
//! the transport connects to; everything that shows it (`Display`, `Debug`,
//! the parse error) goes through [`redact`].

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where the Datadog Agent listens for traces.
///
/// Parse one with [`str::parse`] or [`AgentUrl::parse`]. Its `Display` and
/// `Debug` never show a password: `http://user:secret@host:8126` is shown as
/// `http://user:***@host:8126`, and a lone user name (often a token) as `***`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentUrl {
    /// An HTTP base URL such as `http://localhost:8126`: scheme and authority,
    /// no path and no trailing slash.
    Http(String),
    /// The agent's unix domain socket, e.g. `/var/run/datadog/apm.socket`.
    Unix(PathBuf),
}

impl AgentUrl {
    /// Parses `http://host[:port][/]` or `unix:///path/to/socket`; the same
    /// as [`str::parse`].
    ///
    /// The host is a name, an IPv4 address or a bracketed IPv6 address; the
    /// port, when given, is from 1 to 65535. A path (other than a lone `/`),
    /// a query or a fragment is an error: the tracer appends its own paths
    /// (`/v0.4/traces`), so they would be silently lost or misrouted.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{AgentUrl, AgentUrlErrorKind};
    ///
    /// assert_eq!(AgentUrl::parse("http://localhost:8126/").unwrap(),
    ///            AgentUrl::Http("http://localhost:8126".into()));
    /// assert_eq!(AgentUrl::parse("unix:///var/run/datadog/apm.socket").unwrap(),
    ///            AgentUrl::Unix("/var/run/datadog/apm.socket".into()));
    /// let error = AgentUrl::parse("http://agent:8126/v0.4/traces").unwrap_err();
    /// assert_eq!(error.kind(), AgentUrlErrorKind::Path);
    /// assert!(AgentUrl::parse("ftp://x").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<AgentUrl, AgentUrlError> {
        url.parse()
    }
}

impl FromStr for AgentUrl {
    type Err = AgentUrlError;

    fn from_str(url: &str) -> Result<AgentUrl, AgentUrlError> {
        let url = url.trim();
        let error = |kind| AgentUrlError::new(url, kind);
        if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(error(AgentUrlErrorKind::SocketPath));
            }
            return Ok(AgentUrl::Unix(PathBuf::from(path)));
        }
        if url.starts_with("https://") {
            return Err(error(AgentUrlErrorKind::Https));
        }
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(error(AgentUrlErrorKind::Scheme));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if tail.contains(['?', '#']) {
            return Err(error(AgentUrlErrorKind::Query));
        }
        if !tail.trim_start_matches('/').is_empty() {
            return Err(error(AgentUrlErrorKind::Path));
        }
        // Userinfo is kept for the connection and never shown.
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        let (host, port) = split_host_port(host_port);
        if host.is_empty() {
            return Err(error(AgentUrlErrorKind::MissingHost));
        }
        if !valid_host(host) {
            return Err(error(AgentUrlErrorKind::InvalidHost));
        }
        if let Some(port) = port {
            if !valid_port(port) {
                return Err(error(AgentUrlErrorKind::InvalidPort));
            }
        }
        Ok(AgentUrl::Http(format!("http://{authority}")))
    }
}

/// `host[:port]` or `[v6]:port` into host and port text.
fn split_host_port(host_port: &str) -> (&str, Option<&str>) {
    if host_port.starts_with('[') {
        return match host_port.find(']') {
            Some(close) => {
                let (host, after) = host_port.split_at(close + 1);
                // Anything after `]` other than `:port` is a bad port.
                (
                    host,
                    (!after.is_empty()).then(|| after.strip_prefix(':').unwrap_or(after)),
                )
            }
            None => (host_port, None),
        };
    }
    match host_port.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    }
}

/// A DNS name or IPv4 address (letters, digits, `-`, `.`, `_`), or an IPv6
/// address in brackets, with an optional `%zone`.
fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let (address, zone) = inner.split_once('%').unwrap_or((inner, "x"));
        return address.parse::<std::net::Ipv6Addr>().is_ok()
            && !zone.is_empty()
            && zone
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    }
    host.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// Digits only (`u16::from_str` also takes a leading `+`), 1 to 65535.
fn valid_port(port: &str) -> bool {
    !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// `url` with the password of its userinfo replaced by `***`, or the whole
/// userinfo when there is no password (a lone user name is often a token).
///
/// Everything between the scheme and the last `@` counts as userinfo, so a
/// password with an unescaped `/`, `?` or `#` is hidden too; an `@` further
/// on (never in a valid agent URL) only hides more.
pub(crate) fn redact(url: &str) -> Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let Some(at) = url[start..].rfind('@').map(|i| start + i) else {
        return Cow::Borrowed(url);
    };
    let user = match url[start..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    Cow::Owned(format!("{}{user}{}", &url[..start], &url[at..]))
}

impl fmt::Display for AgentUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentUrl::Http(url) => f.write_str(&redact(url)),
            AgentUrl::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

impl fmt::Debug for AgentUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentUrl::Http(url) => f.debug_tuple("Http").field(&redact(url)).finish(),
            AgentUrl::Unix(path) => f.debug_tuple("Unix").field(path).finish(),
        }
    }
}

/// Why a string is not an [`AgentUrl`].
///
/// Its `Display` names the URL (credentials hidden) and the reason.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{AgentUrl, AgentUrlErrorKind};
///
/// let error = "http://user:secret@:8126".parse::<AgentUrl>().unwrap_err();
/// assert_eq!(error.kind(), AgentUrlErrorKind::MissingHost);
/// assert_eq!(error.to_string(), r#""http://user:***@:8126" has no host"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentUrlError {
    /// The rejected URL, redacted.
    url: String,
    kind: AgentUrlErrorKind,
}

impl AgentUrlError {
    fn new(url: &str, kind: AgentUrlErrorKind) -> AgentUrlError {
        AgentUrlError {
            url: redact(url).into_owned(),
            kind,
        }
    }

    /// What is wrong with the URL.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{AgentUrl, AgentUrlErrorKind};
    ///
    /// let error = AgentUrl::parse("http://agent:+8126").unwrap_err();
    /// assert_eq!(error.kind(), AgentUrlErrorKind::InvalidPort);
    /// ```
    pub fn kind(&self) -> AgentUrlErrorKind {
        self.kind
    }
}

impl fmt::Display for AgentUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}", self.url, self.kind.reason())
    }
}

impl std::error::Error for AgentUrlError {}

/// The reasons an agent URL is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentUrlErrorKind {
    /// Neither `http://` nor `unix://`.
    Scheme,
    /// `https://`: the local agent serves plain HTTP.
    Https,
    /// `unix://` without an absolute path (`unix:///path`).
    SocketPath,
    /// An empty host, as in `http://:8126`.
    MissingHost,
    /// A host that is not a name, an IPv4 address or a bracketed IPv6 address.
    InvalidHost,
    /// A port that is not a number from 1 to 65535 (`:`, `:+80`, `:0`, `:http`).
    InvalidPort,
    /// A path after the authority: the tracer appends its own.
    Path,
    /// A query (`?`) or fragment (`#`).
    Query,
}

impl AgentUrlErrorKind {
    fn reason(self) -> &'static str {
        match self {
            AgentUrlErrorKind::Scheme => {
                "is not an agent URL (expected http://host:port or unix:///path)"
            }
            AgentUrlErrorKind::Https => {
                "uses https, which the local agent does not serve; use http:// or unix://"
            }
            AgentUrlErrorKind::SocketPath => {
                "is not a unix socket URL with an absolute path (unix:///path)"
            }
            AgentUrlErrorKind::MissingHost => "has no host",
            AgentUrlErrorKind::InvalidHost => {
                "has an invalid host (expected a name, an IPv4 address or [an IPv6 address])"
            }
            AgentUrlErrorKind::InvalidPort => "has an invalid port (expected 1 to 65535)",
            AgentUrlErrorKind::Path => {
                "has a path; the agent URL is only http://host:port (the tracer adds /v0.4/traces)"
            }
            AgentUrlErrorKind::Query => "has a query or fragment; use http://host:port",
        }
    }
}
