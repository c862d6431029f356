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
}

/// Why no answer came.
#[derive(Debug)]
pub(crate) struct SendError(pub(crate) String);

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) enum Transport {
    Http { agent: ureq::Agent, base: String },
    Unix { path: PathBuf, timeout: Duration },
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
                }
            }
            AgentUrl::Unix(path) => Transport::Unix {
                path: path.clone(),
                timeout,
            },
        }
    }

    pub(crate) fn put(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Response, SendError> {
        match self {
            Transport::Http { agent, base } => {
                let mut request = agent.put(format!("{base}{path}"));
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                let mut response = request.send(body).map_err(|e| SendError(e.to_string()))?;
                let status = response.status().as_u16();
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(1024 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                Ok(Response { status, body })
            }
            Transport::Unix {
                path: socket,
                timeout,
            } => unix_put(socket, *timeout, path, headers, body),
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
    let io = |e: std::io::Error| SendError(format!("unix socket {}: {e}", socket.display()));
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(io)?;
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
    Err(SendError(format!(
        "unix sockets are not available on this platform ({})",
        socket.display()
    )))
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

        let chunked = "HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let response = read_response(chunked.as_bytes()).unwrap();
        assert_eq!((response.status, response.body.as_str()), (503, "abcde"));

        let to_end = "HTTP/1.0 400 Bad\r\n\r\nuntil close";
        let response = read_response(to_end.as_bytes()).unwrap();
        assert_eq!(
            (response.status, response.body.as_str()),
            (400, "until close")
        );

        assert!(read_response("garbage".as_bytes()).is_err());
    }
}
