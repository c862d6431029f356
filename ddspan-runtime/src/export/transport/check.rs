//! What reading an agent's answer guarantees whatever the agent sends: no
//! panic, at most [`MAX_ANSWER`] bytes taken from the connection, a body of
//! at most [`MAX_BODY`], and the same outcome however the bytes are split
//! into reads.
//!
//! Used by the unit tests, by the fuzz target `agent_answer` and by
//! `tests/transport_corpus.rs`, which include this file and `wire.rs` as
//! they are (`#[path]`), so it uses nothing but `std` and `super::wire`.

use std::io::{self, Read};

use super::wire::{read_answer, Answer, MAX_ANSWER, MAX_BODY};

/// Hands out `data`, then `endless` repeated forever, in reads of at most
/// `step` bytes; counts what was taken.
struct Source<'a> {
    data: &'a [u8],
    endless: &'a [u8],
    at: usize,
    step: usize,
    taken: u64,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.step);
        let n = if let Some(rest) = self.data.get(self.at..).filter(|r| !r.is_empty()) {
            let n = want.min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            n
        } else if self.endless.is_empty() {
            0
        } else {
            let offset = (self.at - self.data.len()) % self.endless.len();
            let rest = &self.endless[offset..];
            let n = want.min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            n
        };
        self.at += n;
        self.taken += n as u64;
        Ok(n)
    }
}

/// What an outcome shows: an error, or status, `Retry-After` and body.
type Outcome = Option<(u16, Option<std::time::Duration>, Option<Vec<u8>>)>;

/// Reads `data` (then `endless` forever) in reads of `step` bytes; checks
/// the bounds.
fn read(data: &[u8], endless: &[u8], step: usize) -> Outcome {
    let mut source = Source {
        data,
        endless,
        at: 0,
        step,
        taken: 0,
    };
    let result = read_answer(&mut source);
    assert!(
        source.taken <= MAX_ANSWER,
        "took {} bytes of one answer",
        source.taken
    );
    let Ok(Answer {
        status,
        retry_after,
        body,
        ..
    }) = result
    else {
        return None;
    };
    assert!((100..=999).contains(&status), "status {status}");
    if let Some(body) = &body {
        assert!(body.len() <= MAX_BODY, "a body of {} bytes", body.len());
    }
    Some((status, retry_after, body))
}

/// The property for one answer (the fuzz target's input): its first byte
/// sets the size of the reads (1 to 16 bytes, so that lines split
/// anywhere), the rest is what the agent sent. The outcome must not
/// depend on the split.
pub(crate) fn check_answer(data: &[u8]) {
    let Some((&first, answer)) = data.split_first() else {
        return;
    };
    let split = read(answer, &[], usize::from(first % 16) + 1);
    let whole = read(answer, &[], usize::MAX);
    assert_eq!(split, whole, "the outcome depends on how the reads split");
}

/// Answers that never end, each shape of them: every one is given up
/// within the bound.
pub(crate) fn endless_answers() {
    let cases: [(&[u8], &[u8]); 9] = [
        (b"", b"A"),
        (b"HTTP/1.1 200 OK", b"A"),
        (b"HTTP/1.1 200 OK\r\n", b"X-Endless: header\r\n"),
        (b"HTTP/1.1 200 OK\r\nX-Long: ", b"v"),
        (b"", b"HTTP/1.1 100 Continue\r\n\r\n"),
        (b"HTTP/1.1 200 OK\r\n\r\n", b"body until close "),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"1\r\na\r\n",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;",
            b"e",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
            b"T: x\r\n",
        ),
    ];
    for (start, endless) in cases {
        for step in [1, 7, 4096] {
            let outcome = read(start, endless, step);
            // Only an endless body may still give a status (without the
            // body: it is over the limit).
            if let Some((_, _, body)) = outcome {
                assert_eq!(body, None, "{:?}", String::from_utf8_lossy(start));
            }
        }
    }
}

/// Well-formed answers of every framing, to mutate.
const SEEDS: [&str; 8] = [
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"rate_by_service\":{}}",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: v\r\n\r\n",
    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.0 413 Payload Too Large\r\nConnection: close\r\n\r\ntoo large",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 503 Busy\r\nRetry-After: 0.5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    "HTTP/1.1 500 Oops\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\n\r\n{}",
];

/// Numbers an agent could send where a size goes.
const HUGE: [&str; 8] = [
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "FFFFFFFFFFFFFFFF",
    "10000000000000000",
    "-1",
    "0x10",
    "1048577",
];

/// xorshift64: a fixed sequence, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One hostile variant of a seed: truncated, a number made huge, newlines
/// removed, a line repeated many times, bytes flipped or inserted.
fn mutate(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let mut data = seed.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 => data.truncate(rng.below(data.len() + 1)),
            1 => {
                let digits: Vec<usize> = (0..data.len())
                    .filter(|&i| data[i].is_ascii_hexdigit())
                    .collect();
                if !digits.is_empty() {
                    let at = digits[rng.below(digits.len())];
                    let end = (at..data.len())
                        .find(|&i| !data[i].is_ascii_hexdigit())
                        .unwrap_or(data.len());
                    let huge = HUGE[rng.below(HUGE.len())].as_bytes();
                    data.splice(at..end, huge.iter().copied());
                }
            }
            2 => data.retain(|&b| b != b'\n'),
            3 => {
                let starts: Vec<usize> = std::iter::once(0)
                    .chain((0..data.len()).filter(|&i| data[i] == b'\n').map(|i| i + 1))
                    .filter(|&i| i < data.len())
                    .collect();
                if let Some(&start) = starts.get(rng.below(starts.len())) {
                    let end = (start..data.len())
                        .find(|&i| data[i] == b'\n')
                        .map_or(data.len(), |i| i + 1);
                    let line = data[start..end].to_vec();
                    let times = 1 + rng.below(200);
                    let repeated = line.repeat(times);
                    data.splice(start..start, repeated);
                }
            }
            4 => {
                if !data.is_empty() {
                    let at = rng.below(data.len());
                    data[at] = rng.next() as u8;
                }
            }
            _ => {
                let at = rng.below(data.len() + 1);
                let noise: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, noise);
            }
        }
    }
    data
}

/// `cases` hostile answers made from the seeds, from a fixed `seed`: each
/// one holds [`check_answer`]'s property.
pub(crate) fn hostile_answers(cases: usize, seed: u64) {
    let mut rng = Rng(seed | 1);
    for seed in SEEDS {
        let mut input = vec![0];
        input.extend_from_slice(seed.as_bytes());
        check_answer(&input);
        assert!(read(seed.as_bytes(), &[], 3).is_some(), "{seed:?} reads");
    }
    for _ in 0..cases {
        let seed = SEEDS[rng.below(SEEDS.len())];
        let mut input = vec![rng.next() as u8];
        input.extend(mutate(&mut rng, seed));
        check_answer(&input);
    }
}
