//! HTTP to the agent: over TCP with one reused `ureq` agent, or over the
//! agent's unix domain socket with a minimal HTTP/1.1 exchange (ureq has no
//! stable unix-socket connector).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::AgentUrl;

/// What the agent answered.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: String,
    /// The `Retry-After` header in seconds, when the agent sent one.
    pub(crate) retry_after: Option<Duration>,
}

/// Why no answer came.
#[derive(Debug)]
pub(crate) struct SendError {
    /// Whether the request certainly never reached the agent (no connection
    /// could be made): resending it cannot deliver it twice.
    pub(crate) unreachable: bool,
    pub(crate) message: String,
}

impl SendError {
    pub(crate) fn failed(message: impl std::fmt::Display) -> SendError {
        SendError {
            unreachable: false,
            message: message.to_string(),
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Whether ureq failed before any byte of the request left: no connection.
fn never_connected(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Timeout(which) => {
            matches!(which, ureq::Timeout::Resolve | ureq::Timeout::Connect)
        }
        ureq::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::AddrNotAvailable
                | std::io::ErrorKind::NotFound
        ),
        _ => false,
    }
}

/// The seconds form of `Retry-After` (the agent never sends the date form).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

pub(crate) enum Transport {
    Http {
        agent: ureq::Agent,
        base: String,
        timeout: Duration,
    },
    Unix {
        path: PathBuf,
        timeout: Duration,
    },
}

impl Transport {
    pub(crate) fn new(url: &AgentUrl, timeout: Duration) -> Transport {
        match url {
            AgentUrl::Http(base) => {
                let config = ureq::Agent::config_builder()
                    .timeout_global(Some(timeout))
                    .http_status_as_error(false)
                    .max_idle_connections_per_host(2)
                    .build();
                Transport::Http {
                    agent: ureq::Agent::new_with_config(config),
                    base: base.clone(),
                    timeout,
                }
            }
            AgentUrl::Unix(path) => Transport::Unix {
                path: path.clone(),
                timeout,
            },
        }
    }

    /// One PUT; `timeout` bounds the whole exchange when shorter than the
    /// configured request timeout (a shutdown's deadline).
    pub(crate) fn put(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Response, SendError> {
        match self {
            Transport::Http {
                agent,
                base,
                timeout: configured,
            } => {
                let mut request = agent.put(format!("{base}{path}"));
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                // Only ever shorter: a later deadline must not lift the
                // configured limit (a hung request would use up a whole
                // shutdown, leaving no time for a retry).
                if let Some(timeout) = timeout.filter(|t| t < configured) {
                    request = request.config().timeout_global(Some(timeout)).build();
                }
                let mut response = request.send(body).map_err(|error| SendError {
                    unreachable: never_connected(&error),
                    message: error.to_string(),
                })?;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                // A body that cannot be read is an empty answer, not a
                // failed send: the status already says what happened.
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(1024 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                Ok(Response {
                    status,
                    body,
                    retry_after,
                })
            }
            Transport::Unix {
                path: socket,
                timeout: configured,
            } => {
                let timeout = timeout.map_or(*configured, |t| t.min(*configured));
                unix_put(socket, timeout, path, headers, body)
            }
        }
    }
}

#[cfg(unix)]
fn unix_put(
    socket: &std::path::Path,
    timeout: Duration,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Response, SendError> {
    let io =
        |e: std::io::Error| SendError::failed(format!("unix socket {}: {e}", socket.display()));
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| SendError {
        unreachable: true,
        message: format!("unix socket {}: {e}", socket.display()),
    })?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body).map_err(io)?;
    stream.flush().map_err(io)?;
    read_response(BufReader::new(stream)).map_err(io)
}

#[cfg(not(unix))]
fn unix_put(
    socket: &std::path::Path,
    _: Duration,
    _: &str,
    _: &[(&str, String)],
    _: &[u8],
) -> Result<Response, SendError> {
    Err(SendError {
        unreachable: true,
        message: format!(
            "unix sockets are not available on this platform ({})",
            socket.display()
        ),
    })
}

/// Reads an HTTP/1.1 response: status line, headers, and a body framed by
/// `Content-Length`, chunked encoding, or the end of the connection.
fn read_response(mut reader: impl BufRead) -> std::io::Result<Response> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid("malformed HTTP status line"))?;
    let mut content_length = None;
    let mut chunked = false;
    let mut retry_after = None;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("retry-after") {
                retry_after = parse_retry_after(value);
            }
        }
    }
    const LIMIT: u64 = 1024 * 1024;
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| invalid("malformed chunk size"))?;
            if size == 0 || body.len() + size > LIMIT as usize {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else if let Some(length) = content_length {
        reader
            .take(length.min(LIMIT as usize) as u64)
            .read_to_end(&mut body)?;
    } else {
        reader.take(LIMIT).read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        retry_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_length_and_chunked_bodies() {
        let plain = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more";
        let response = read_response(plain.as_bytes()).unwrap();
        assert_eq!((response.status, response.body.as_str()), (200, "hello"));

        let chunked = "HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\nRetry-After: 3\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let response = read_response(chunked.as_bytes()).unwrap();
        assert_eq!((response.status, response.body.as_str()), (503, "abcde"));
        assert_eq!(response.retry_after, Some(Duration::from_secs(3)));

        let to_end = "HTTP/1.0 400 Bad\r\n\r\nuntil close";
        let response = read_response(to_end.as_bytes()).unwrap();
        assert_eq!(
            (response.status, response.body.as_str()),
            (400, "until close")
        );

        assert!(read_response("garbage".as_bytes()).is_err());
    }

    #[test]
    fn retry_after_takes_seconds_only() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("99999"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
