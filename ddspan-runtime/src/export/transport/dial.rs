//! Where the agent is, reaching it before a deadline, and a connection
//! whose every read and write waits at most until that deadline.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The agent's address, from its URL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

/// An `http://host[:port][/prefix]` URL split into the address, the `Host`
/// header and the path prefix of every request.
pub(crate) fn parse_http(url: &str) -> Result<(Target, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
    let (authority, prefix) = match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        // `[::1]` alone: the colon is inside the brackets.
        Some((host, port)) if !port.contains(']') => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("{url:?} has an invalid port {port:?}"))?,
        ),
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let target = Target::Tcp {
        host: host.to_owned(),
        port,
    };
    Ok((target, authority.to_owned(), prefix.to_owned()))
}

/// Time left before `deadline`, or a timeout error.
pub(crate) fn remaining(deadline: Instant) -> io::Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
        .ok_or_else(deadline_passed)
}

fn deadline_passed() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the request's deadline passed")
}

/// A connection to the agent.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(Some(timeout)),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_read_timeout(Some(timeout)),
        }
    }

    fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(Some(timeout)),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_write_timeout(Some(timeout)),
        }
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(nonblocking),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_nonblocking(nonblocking),
        }
    }

    fn read_once(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => Read::read(&mut &*s, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Read::read(&mut &*s, buf),
        }
    }

    fn write_once(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => Write::write(&mut &*s, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Write::write(&mut &*s, buf),
        }
    }

    /// Whether a kept connection can carry a request: the agent has not
    /// closed it, and sent nothing unasked. Never waits.
    pub(crate) fn is_idle_and_open(&self) -> bool {
        if self.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let open = matches!(
            self.read_once(&mut byte),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        );
        self.set_nonblocking(false).is_ok() && open
    }

    /// This connection under `deadline`.
    pub(crate) fn until(&self, deadline: Instant) -> Deadlined<'_> {
        Deadlined {
            stream: self,
            deadline,
            once_started: None,
        }
    }

    /// For an answer: its first byte may come until `first_byte_by` (a
    /// busy agent decodes the whole payload first), the rest must follow
    /// within `then` of it, and all of it before `hard` when given.
    pub(crate) fn answer_until(
        &self,
        first_byte_by: Instant,
        then: Duration,
        hard: Option<Instant>,
    ) -> Deadlined<'_> {
        Deadlined {
            stream: self,
            deadline: first_byte_by,
            once_started: Some((then, hard)),
        }
    }
}

/// A connection on which every read and write waits at most until one
/// deadline: a request cannot outlast it however the agent drips its
/// answer.
pub(crate) struct Deadlined<'a> {
    stream: &'a Stream,
    deadline: Instant,
    /// Once the first bytes came: the rest within this, before the bound.
    once_started: Option<(Duration, Option<Instant>)>,
}

/// A read or write that ran into the socket timeout set from the deadline
/// (`WouldBlock` on unix) is the deadline passing.
fn timed_out(error: io::Error) -> io::Error {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => deadline_passed(),
        _ => error,
    }
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = remaining(self.deadline)?;
        self.stream.set_read_timeout(left)?;
        let read = self.stream.read_once(buf).map_err(timed_out)?;
        if read > 0 {
            if let Some((then, hard)) = self.once_started.take() {
                let rest_by = Instant::now() + then;
                self.deadline = hard.map_or(rest_by, |hard| rest_by.min(hard));
            }
        }
        Ok(read)
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = remaining(self.deadline)?;
        self.stream.set_write_timeout(left)?;
        self.stream.write_once(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Connects to `target` before `deadline`. Any error means no connection
/// was made: the agent saw nothing.
pub(crate) fn connect(target: &Target, deadline: Instant) -> io::Result<Stream> {
    match target {
        Target::Tcp { host, port } => {
            let mut last = None;
            for addr in resolve(host, *port, deadline)? {
                let left = remaining(deadline)?;
                match TcpStream::connect_timeout(&addr, left) {
                    Ok(stream) => {
                        // The head and the body go in two writes.
                        stream.set_nodelay(true)?;
                        return Ok(Stream::Tcp(stream));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| no_address(host)))
        }
        #[cfg(unix)]
        Target::Unix(path) => {
            remaining(deadline)?;
            // Immediate unless the agent's accept backlog is full: std has
            // no connect with a timeout for unix sockets.
            std::os::unix::net::UnixStream::connect(path).map(Stream::Unix)
        }
        #[cfg(not(unix))]
        Target::Unix(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "unix sockets are not available on this platform",
        )),
    }
}

fn no_address(host: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host} resolves to no address"),
    )
}

/// Whether `host` is under `.invalid`, which never resolves (RFC 6761
/// 6.4: resolvers should fail it at once, without a query; glibc asks the
/// DNS server anyway).
fn never_resolves(host: &str) -> bool {
    let host = host.trim_end_matches('.').as_bytes();
    let suffix = b"invalid";
    host.len() >= suffix.len()
        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        && (host.len() == suffix.len() || host[host.len() - suffix.len() - 1] == b'.')
}

/// The addresses of `host`, found before `deadline`. An IP address is taken
/// as is; a name is looked up on a helper thread, so that a slow resolver
/// cannot hold the request past its deadline.
fn resolve(host: &str, port: u16, deadline: Instant) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if never_resolves(host) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} never resolves (.invalid, RFC 6761)"),
        ));
    }
    let lookup = {
        let host = host.to_owned();
        move || (host.as_str(), port).to_socket_addrs().map(Vec::from_iter)
    };
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("ddspan-resolve".to_owned())
        .spawn(move || {
            let _ = sender.send(lookup());
        });
    let found = match spawned {
        Ok(_) => {
            let left = remaining(deadline)?;
            receiver.recv_timeout(left).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("resolving {host}: the request's deadline passed"),
                )
            })?
        }
        // No thread: look up here, unbounded, rather than not at all.
        Err(_) => (host, port).to_socket_addrs().map(Vec::from_iter),
    };
    let found = found.map_err(|e| io::Error::new(e.kind(), format!("resolving {host}: {e}")))?;
    if found.is_empty() {
        return Err(no_address(host));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_split_into_address_host_header_and_prefix() {
        let tcp = |host: &str, port| Target::Tcp {
            host: host.to_owned(),
            port,
        };
        assert_eq!(
            parse_http("http://localhost:8126").unwrap(),
            (tcp("localhost", 8126), "localhost:8126".into(), "".into())
        );
        assert_eq!(
            parse_http("http://[::1]:9/agent/").unwrap(),
            (tcp("::1", 9), "[::1]:9".into(), "/agent".into())
        );
        assert_eq!(
            parse_http("http://[::1]").unwrap(),
            (tcp("::1", 80), "[::1]".into(), "".into())
        );
        assert!(parse_http("http://:8126").is_err());
        assert!(parse_http("http://host:x").is_err());
    }

    #[test]
    fn names_under_invalid_fail_without_a_lookup() {
        for host in ["invalid", "agent.invalid", "a.b.INVALID", "agent.invalid."] {
            assert!(never_resolves(host), "{host}");
            let error = resolve(host, 8126, Instant::now() + Duration::from_secs(60)).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::NotFound);
        }
        for host in ["localhost", "notinvalid", "invalid.example"] {
            assert!(!never_resolves(host), "{host}");
        }
    }

    /// A label of 64 bytes (at most 63, RFC 1035): the system's resolver
    /// fails it itself. (glibc sends no query for it; checked with strace.)
    #[test]
    fn a_name_the_system_resolver_rejects_fails() {
        let host = format!("{}.example", "a".repeat(64));
        let deadline = Instant::now() + Duration::from_secs(60);
        assert!(resolve(&host, 8126, deadline).is_err());
    }

    #[test]
    fn an_ip_address_is_not_looked_up() {
        let deadline = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            resolve("127.0.0.1", 1, deadline).unwrap(),
            vec![SocketAddr::from(([127, 0, 0, 1], 1))]
        );
    }

    #[test]
    fn a_passed_deadline_is_a_timeout() {
        let error = remaining(Instant::now() - Duration::from_millis(1)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
