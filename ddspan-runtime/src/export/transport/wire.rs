//! HTTP/1.1 on the wire: the request head, and the agent's answer read with
//! a bound on everything an agent controls (status line, header lines,
//! their count, the body, chunk framing) and checked arithmetic on every
//! number it sends.
//!
//! Only `std`, and no I/O of its own: the fuzz target and the corpus test
//! include this file as it is (`#[path]`) and feed it bytes.

use std::io::{self, BufRead, BufReader, Read};
use std::time::Duration;

/// The longest status, header, chunk-size or trailer line, with its CRLF.
pub(crate) const MAX_LINE: usize = 8 * 1024;
/// The most header lines of one answer (and trailer lines of a chunked
/// one).
pub(crate) const MAX_HEADERS: usize = 64;
/// The most bytes of status lines and headers, interim (1xx) answers
/// included.
pub(crate) const MAX_HEAD: usize = 32 * 1024;
/// The largest body taken; the agent answers a few hundred bytes of JSON.
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// The most bytes of chunk-size lines, chunk ends and trailers.
pub(crate) const MAX_FRAMING: usize = 32 * 1024;
/// The most bytes one answer takes from the connection, read-ahead
/// included: nothing an agent sends makes the client read more.
pub(crate) const MAX_ANSWER: u64 = (MAX_HEAD + MAX_BODY + MAX_FRAMING) as u64;
/// Interim answers (`100 Continue`, `103 Early Hints`) skipped before the
/// final one.
pub(crate) const MAX_INTERIM: usize = 4;

/// The agent's answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The `Retry-After` header in seconds, when there is one.
    pub(crate) retry_after: Option<Duration>,
    /// The `Datadog-Agent-State` header (a hash of the agent's `/info`,
    /// which changes with it), when there is one.
    pub(crate) agent_state: Option<String>,
    /// `None` when the body could not be read whole (too large, badly
    /// framed, cut off, too slow): the status alone tells what happened.
    pub(crate) body: Option<Vec<u8>>,
    /// Whether the connection can carry the next request: the body was
    /// read exactly to its end, nothing followed it, and neither side
    /// asked to close.
    pub(crate) reusable: bool,
}

/// The request head for a body of `body_len` bytes. Header names and values
/// with a CR or LF are left out (they would end the head early).
pub(crate) fn request_head(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, String)],
    body_len: usize,
) -> Vec<u8> {
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {body_len}\r\n");
    let clean = |s: &str| !s.contains(['\r', '\n']);
    for (name, value) in headers {
        if clean(name) && clean(value) && !name.contains(':') {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Reads one answer from `source`, taking at most [`MAX_ANSWER`] bytes from
/// it. An error means no usable status came (the request's fate is
/// unknown); a body that cannot be read is an answer without one.
pub(crate) fn read_answer(source: impl Read) -> io::Result<Answer> {
    let mut reader = BufReader::with_capacity(8 * 1024, source.take(MAX_ANSWER));
    let head = read_head(&mut reader)?;
    let body = read_body(&mut reader, head.framing).ok();
    let reusable = body.is_some()
        && !head.close
        && !matches!(head.framing, Framing::UntilClose)
        && reader.buffer().is_empty();
    Ok(Answer {
        status: head.status,
        retry_after: head.retry_after,
        agent_state: head.agent_state,
        body,
        reusable,
    })
}

/// The seconds form of `Retry-After` (the agent never sends the date form),
/// at most an hour.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

/// How the body ends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Framing {
    Length(u64),
    Chunked,
    /// At the end of the connection (HTTP/1.0 style, or an unknown
    /// transfer coding).
    UntilClose,
}

struct Head {
    status: u16,
    retry_after: Option<Duration>,
    agent_state: Option<String>,
    framing: Framing,
    close: bool,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn cut_off(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what.to_owned())
}

/// Reads a line ending in LF into `line` (without its CR LF); `budget` is
/// what may still be read, at most [`MAX_LINE`], and is reduced by what
/// was.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>, budget: &mut usize) -> io::Result<()> {
    line.clear();
    let max = (*budget).min(MAX_LINE);
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Err(cut_off("the answer ended inside a line"));
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take > max {
            return Err(invalid("an answer line longer than the limit"));
        }
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            *budget -= line.len();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(());
        }
    }
}

/// `HTTP/1.x NNN reason`: the status, and whether it is HTTP/1.0.
fn parse_status_line(line: &[u8]) -> io::Result<(u16, bool)> {
    let bad = || invalid("a malformed HTTP status line");
    let rest = line.strip_prefix(b"HTTP/1.").ok_or_else(bad)?;
    let (&minor, rest) = rest.split_first().ok_or_else(bad)?;
    if !minor.is_ascii_digit() {
        return Err(bad());
    }
    let rest = rest.strip_prefix(b" ").ok_or_else(bad)?;
    let code = rest.get(..3).ok_or_else(bad)?;
    if !code.iter().all(u8::is_ascii_digit) || !matches!(rest.get(3), None | Some(b' ')) {
        return Err(bad());
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Err(bad());
    }
    Ok((status, minor == b'0'))
}

/// `Content-Length`: digits only, at most what fits in a u64.
fn parse_length(value: &str) -> io::Result<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("a malformed Content-Length"));
    }
    value
        .parse()
        .map_err(|_| invalid("a Content-Length beyond any body"))
}

/// Whether a comma-separated header value holds `token`.
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn read_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let mut budget = MAX_HEAD;
    let mut line = Vec::new();
    for _ in 0..=MAX_INTERIM {
        read_line(reader, &mut line, &mut budget)?;
        let (status, http_1_0) = parse_status_line(&line)?;
        let mut length = None;
        let mut chunked = None;
        let mut close = http_1_0;
        let mut retry_after = None;
        let mut agent_state = None;
        let mut count = 0;
        loop {
            read_line(reader, &mut line, &mut budget)?;
            if line.is_empty() {
                break;
            }
            count += 1;
            if count > MAX_HEADERS {
                return Err(invalid("more header lines than the limit"));
            }
            // A folded line continues an earlier header, none we read.
            if line[0] == b' ' || line[0] == b'\t' {
                continue;
            }
            let text = std::str::from_utf8(&line).map_err(|_| invalid("a header not in UTF-8"));
            let Some((name, value)) = text?.split_once(':') else {
                return Err(invalid("a header line without a colon"));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let parsed = parse_length(value)?;
                if length.is_some_and(|l| l != parsed) {
                    return Err(invalid("two different Content-Length headers"));
                }
                length = Some(parsed);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                let last = value.rsplit(',').next().unwrap_or_default().trim();
                chunked = Some(last.eq_ignore_ascii_case("chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                if has_token(value, "close") {
                    close = true;
                } else if http_1_0 && has_token(value, "keep-alive") {
                    close = false;
                }
            } else if name.eq_ignore_ascii_case("retry-after") {
                retry_after = parse_retry_after(value);
            } else if name.eq_ignore_ascii_case("datadog-agent-state") {
                // A hash: short. A longer value is not one.
                agent_state = (value.len() <= 128).then(|| value.to_owned());
            }
        }
        match status {
            101 => return Err(invalid("the agent switched protocols")),
            100..=199 => continue,
            _ => {}
        }
        let framing = if status == 204 || status == 304 {
            Framing::Length(0)
        } else {
            match (chunked, length) {
                (Some(true), _) => Framing::Chunked,
                (Some(false), _) => Framing::UntilClose,
                (None, Some(length)) => Framing::Length(length),
                (None, None) => Framing::UntilClose,
            }
        };
        // A message with both framings is suspect: never reuse its
        // connection.
        let close = close || (chunked.is_some() && length.is_some());
        return Ok(Head {
            status,
            retry_after,
            agent_state,
            framing,
            close,
        });
    }
    Err(invalid("more interim (1xx) answers than the limit"))
}

/// Reads exactly `size` more bytes into `body`.
fn read_exact_into(reader: &mut impl BufRead, body: &mut Vec<u8>, size: u64) -> io::Result<()> {
    let read = reader.take(size).read_to_end(body)?;
    if read as u64 == size {
        Ok(())
    } else {
        Err(cut_off("the answer ended inside its body"))
    }
}

fn read_body(reader: &mut impl BufRead, framing: Framing) -> io::Result<Vec<u8>> {
    let limit = MAX_BODY as u64;
    let mut body = Vec::new();
    match framing {
        Framing::Length(length) => {
            if length > limit {
                return Err(invalid("a body larger than the limit"));
            }
            read_exact_into(reader, &mut body, length)?;
        }
        Framing::UntilClose => {
            reader.take(limit + 1).read_to_end(&mut body)?;
            if body.len() > MAX_BODY {
                return Err(invalid("a body larger than the limit"));
            }
        }
        Framing::Chunked => read_chunks(reader, &mut body)?,
    }
    Ok(body)
}

/// A chunk size: hex digits, then optional extensions after `;`.
fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii();
    if digits.is_empty() {
        return Err(invalid("an empty chunk size"));
    }
    digits.iter().try_fold(0u64, |size, &d| {
        let digit = char::from(d)
            .to_digit(16)
            .ok_or_else(|| invalid("a chunk size that is not hexadecimal"))?;
        size.checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(digit)))
            .ok_or_else(|| invalid("a chunk size beyond any body"))
    })
}

fn read_chunks(reader: &mut impl BufRead, body: &mut Vec<u8>) -> io::Result<()> {
    let mut framing = MAX_FRAMING;
    let mut line = Vec::new();
    loop {
        read_line(reader, &mut line, &mut framing)?;
        let size = parse_chunk_size(&line)?;
        if size == 0 {
            break;
        }
        // `body.len()` never exceeds MAX_BODY: no overflow here.
        let room = (MAX_BODY - body.len()) as u64;
        if size > room {
            return Err(invalid("a chunked body larger than the limit"));
        }
        read_exact_into(reader, body, size)?;
        read_line(reader, &mut line, &mut framing)?;
        if !line.is_empty() {
            return Err(invalid("a chunk longer than its size"));
        }
    }
    // Trailers, up to the empty line.
    for _ in 0..=MAX_HEADERS {
        read_line(reader, &mut line, &mut framing)?;
        if line.is_empty() {
            return Ok(());
        }
    }
    Err(invalid("more trailer lines than the limit"))
}
