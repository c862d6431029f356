//! What the benches' stand-in agents share: reading one HTTP/1.1 request
//! off a kept-alive connection, and counting the spans of a trace payload.
#![allow(dead_code)] // each bench uses part of it

use std::io::BufRead;

/// Reads the next request into `body` (sized or chunked); its path, or
/// `None` when the client closed the connection or sent something else
/// than HTTP.
pub(crate) fn read_request(reader: &mut impl BufRead, body: &mut Vec<u8>) -> Option<String> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_owned();
    let (mut length, mut chunked) = (0, false);
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.trim().eq_ignore_ascii_case("chunked");
        }
    }
    body.clear();
    if chunked {
        read_chunked(reader, body)?;
    } else {
        body.resize(length, 0);
        reader.read_exact(body).ok()?;
    }
    Some(path)
}

fn read_chunked(reader: &mut impl BufRead, body: &mut Vec<u8>) -> Option<()> {
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        let start = body.len();
        body.resize(start + size + 2, 0); // the chunk and its CRLF
        reader.read_exact(&mut body[start..]).ok()?;
        body.truncate(start + size);
        if size == 0 {
            return Some(());
        }
    }
}

/// The spans of a msgpack trace payload sent to `path`: v0.4, an array of
/// traces, each an array of spans; v0.5, [string table, traces]. `None`
/// when it does not decode.
pub(crate) fn trace_spans(path: &str, body: &[u8]) -> Option<u64> {
    type Traces = Vec<Vec<serde::de::IgnoredAny>>;
    let traces = if path.starts_with("/v0.5") {
        rmp_serde::from_slice::<(serde::de::IgnoredAny, Traces)>(body)
            .ok()
            .map(|(_, t)| t)
    } else {
        rmp_serde::from_slice::<Traces>(body).ok()
    }?;
    Some(traces.iter().map(Vec::len).sum::<usize>() as u64)
}
