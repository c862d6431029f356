//! The HTTP/1.1 framing of `wire.rs` on answers written out by hand: each
//! framing, interim answers, when a connection is kept, and the bounds.
//! (Apart from `wire.rs`, which the fuzz target and the corpus test include
//! as it is.)

use super::wire::*;
use std::io;
use std::time::Duration;

fn answer(text: &str) -> io::Result<Answer> {
    read_answer(text.as_bytes())
}

fn body(answer: &Answer) -> Option<&str> {
    answer
        .body
        .as_deref()
        .map(|b| std::str::from_utf8(b).unwrap())
}

#[test]
fn reads_content_length_and_chunked_bodies() {
    let plain = answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    assert_eq!((plain.status, body(&plain)), (200, Some("hello")));
    assert!(plain.reusable);

    let chunked = answer(
        "HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\nRetry-After: 3\r\n\r\n\
         3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
    )
    .unwrap();
    assert_eq!((chunked.status, body(&chunked)), (503, Some("abcde")));
    assert_eq!(chunked.retry_after, Some(Duration::from_secs(3)));
    assert!(chunked.reusable);

    let to_end = answer("HTTP/1.0 400 Bad\r\n\r\nuntil close").unwrap();
    assert_eq!((to_end.status, body(&to_end)), (400, Some("until close")));
    assert!(!to_end.reusable);

    let no_content = answer("HTTP/1.1 204 No Content\r\n\r\n").unwrap();
    assert_eq!(body(&no_content), Some(""));
    assert!(no_content.reusable);
}

#[test]
fn interim_answers_are_skipped() {
    let answer =
        answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
    assert_eq!((answer.status, body(&answer)), (200, Some("ok")));
}

#[test]
fn a_connection_is_kept_only_when_the_answer_ended_cleanly() {
    let closing = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    assert!(!answer(closing).unwrap().reusable);
    let trailing = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n12";
    assert!(!answer(trailing).unwrap().reusable, "a byte followed");
    let both =
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert!(!answer(both).unwrap().reusable);
    let keep_alive_1_0 = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
    assert!(answer(keep_alive_1_0).unwrap().reusable);
}

#[test]
fn an_unreadable_body_leaves_the_status() {
    for text in [
        // Cut off, too large, badly framed, an overflowing chunk size.
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1FFFFFFFFFFFFFFFF\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
    ] {
        let answer = answer(text).unwrap();
        assert_eq!((answer.status, answer.body.is_none()), (200, true), "{text:?}");
        assert!(!answer.reusable);
    }
}

#[test]
fn a_malformed_head_is_an_error() {
    for text in [
        "",
        "garbage",
        "HTTP/1.1 200 OK",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 101 Switching\r\n\r\n",
    ] {
        assert!(answer(text).is_err(), "{text:?}");
    }
}

#[test]
fn the_head_is_bounded() {
    let long_line = format!("HTTP/1.1 200 {}\r\n\r\n", "x".repeat(MAX_LINE));
    assert!(answer(&long_line).is_err());
    let many = format!(
        "HTTP/1.1 200 OK\r\n{}\r\n",
        "A: b\r\n".repeat(MAX_HEADERS + 1)
    );
    assert!(answer(&many).is_err());
    let interim = "HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_INTERIM + 1);
    assert!(answer(&interim).is_err());
}

#[test]
fn the_request_head_leaves_out_headers_that_would_split_it() {
    let head = request_head(
        "PUT",
        "/v0.4/traces",
        "localhost:8126",
        &[
            ("Datadog-Meta-Lang", "rust".to_owned()),
            ("X-Evil", "a\r\nInjected: 1".to_owned()),
        ],
        3,
    );
    assert_eq!(
        String::from_utf8(head).unwrap(),
        "PUT /v0.4/traces HTTP/1.1\r\nHost: localhost:8126\r\nContent-Length: 3\r\n\
         Datadog-Meta-Lang: rust\r\n\r\n"
    );
}

#[test]
fn retry_after_takes_seconds_only() {
    assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
    assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
    assert_eq!(parse_retry_after("99999"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_retry_after("-1"), None);
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
}
