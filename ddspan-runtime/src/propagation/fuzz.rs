//! The property the extract fuzz target checks, shared with the test that
//! replays its corpus: any input extracts without panicking, and whatever
//! extracts re-injects into headers that extract to the same context.

use super::{Extractor, Propagator};

/// Reads `data` as header lines (`name: value`, raw bytes allowed) and
/// checks the property for every carrier type.
#[doc(hidden)]
pub fn check_extract(data: &[u8]) {
    let lines: Vec<(&[u8], &[u8])> = data
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            Some((&line[..colon], &line[colon + 1..]))
        })
        .collect();
    let pairs: Vec<(String, String)> = lines
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).trim().to_owned(),
                String::from_utf8_lossy(v).trim().to_owned(),
            )
        })
        .collect();
    check(&pairs);
    #[cfg(feature = "http")]
    {
        let mut map = http::HeaderMap::new();
        for (name, value) in &lines {
            let (Ok(name), Ok(value)) = (
                http::header::HeaderName::from_bytes(name.trim_ascii()),
                http::header::HeaderValue::from_bytes(value.trim_ascii()),
            ) else {
                continue;
            };
            map.append(name, value);
        }
        check(&map);
    }
}

fn check<E: Extractor + ?Sized>(carrier: &E) {
    let propagator = Propagator::default();
    let Ok(context) = propagator.extract(carrier) else {
        return;
    };
    if context.is_baggage_only() {
        // Baggage alone: zero ids, non-empty baggage, and it round-trips.
        assert_eq!((context.trace_id(), context.span_id()), (0, 0));
        assert!(!context.baggage().is_empty());
        let mut out: Vec<(String, String)> = Vec::new();
        propagator.inject(&context, &mut out);
        let again = propagator
            .extract(&out)
            .unwrap_or_else(|e| panic!("re-injected baggage does not extract: {e}: {out:?}"));
        assert!(again.is_baggage_only(), "{out:?}");
        assert_eq!(again.baggage(), context.baggage(), "{out:?}");
        return;
    }
    assert_ne!(
        context.trace_id_low(),
        0,
        "a context never has a zero trace id"
    );
    assert!(
        context.span_id() != 0 || context.origin().is_some(),
        "a zero span id only for a request with an origin and no parent (Synthetics)"
    );
    let mut out: Vec<(String, String)> = Vec::new();
    propagator.inject(&context, &mut out);
    let again = propagator
        .extract(&out)
        .unwrap_or_else(|e| panic!("re-injected headers do not extract: {e}: {out:?}"));
    assert_eq!(again.trace_id(), context.trace_id(), "{out:?}");
    assert_eq!(again.span_id(), context.span_id(), "{out:?}");
    assert_eq!(
        again.sampling_priority(),
        context.sampling_priority(),
        "{out:?}"
    );
}
