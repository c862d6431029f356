//! The `baggage` style: the W3C `baggage` header, `key=value` pairs,
//! percent-encoded, bounded as ddtrace bounds it (64 items, 8192 bytes).

use super::{Extractor, Injector};

const BAGGAGE: &str = "baggage";
const MAX_ITEMS: usize = 64;
const MAX_BYTES: usize = 8192;

pub(super) fn inject(baggage: &[(String, String)], carrier: &mut dyn Injector) {
    let mut header = String::new();
    // An empty key or value would make the whole header malformed for the
    // receiver (see `extract`): such items are not passed on.
    let items = baggage
        .iter()
        .filter(|(k, v)| !k.is_empty() && !v.is_empty());
    for (key, value) in items.take(MAX_ITEMS) {
        let item = format!("{}={}", encode(key), encode(value));
        if header.len() + item.len() + 1 > MAX_BYTES {
            crate::util::diagnostics::debug(format_args!(
                "baggage over {MAX_BYTES} bytes: the rest is not injected"
            ));
            break;
        }
        if !header.is_empty() {
            header.push(',');
        }
        header.push_str(&item);
    }
    if !header.is_empty() {
        carrier.set(BAGGAGE, header);
    }
}

/// A malformed header yields no baggage at all, as in ddtrace and Datadog's
/// cross-tracer tests: a member without `=`, with an empty key or an empty
/// value, or with a bad percent-encoding.
pub(super) fn extract<E: Extractor + ?Sized>(carrier: &E) -> Vec<(String, String)> {
    let Ok(Some(header)) = carrier.get(BAGGAGE) else {
        return Vec::new();
    };
    if header.len() > MAX_BYTES {
        return Vec::new();
    }
    let mut items = Vec::new();
    for member in header.split(',').take(MAX_ITEMS) {
        // Properties after `;` are not kept.
        let pair = member.split(';').next().unwrap_or_default();
        let Some((key, value)) = pair.split_once('=') else {
            return Vec::new();
        };
        let (Some(key), Some(value)) = (decode(key.trim()), decode(value.trim())) else {
            return Vec::new();
        };
        if key.is_empty() || value.is_empty() {
            return Vec::new();
        }
        items.push((key, value));
    }
    items
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!#$&'*+^`|".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_reserved_characters() {
        let baggage = vec![
            ("user.id".to_owned(), "42".to_owned()),
            ("note".to_owned(), "a b,c=d;é".to_owned()),
        ];
        let mut carrier: Vec<(String, String)> = Vec::new();
        inject(&baggage, &mut carrier);
        assert_eq!(carrier[0].1, "user.id=42,note=a%20b%2Cc%3Dd%3B%C3%A9");
        assert_eq!(extract(&carrier), baggage);
    }

    #[test]
    fn items_the_receiver_would_reject_are_not_injected() {
        let baggage = vec![
            ("user.id".to_owned(), "42".to_owned()),
            ("flag".to_owned(), String::new()),
            (String::new(), "x".to_owned()),
        ];
        let mut carrier: Vec<(String, String)> = Vec::new();
        inject(&baggage, &mut carrier);
        assert_eq!(carrier[0].1, "user.id=42");
        assert_eq!(extract(&carrier), baggage[..1]);
    }

    #[test]
    fn malformed_baggage_is_dropped() {
        for header in [
            "novalue",
            "=x",
            "k=%zz",
            "k=%C3",
            "no-value=",
            "a=1,empty=",
            "foo=dropped-with-the-next,=",
        ] {
            let carrier = vec![("baggage".to_owned(), header.to_owned())];
            assert!(extract(&carrier).is_empty(), "{header}");
        }
    }
}
