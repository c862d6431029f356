//! The `datadog` style: `x-datadog-*` headers.

use super::{has_control, header, quoted, ExtractError, Extracted, InjectState, Injector};
use crate::record::Upstream;

const TRACE_ID: &str = "x-datadog-trace-id";
const PARENT_ID: &str = "x-datadog-parent-id";
const PRIORITY: &str = "x-datadog-sampling-priority";
const ORIGIN: &str = "x-datadog-origin";
const TAGS: &str = "x-datadog-tags";

pub(super) fn inject(state: &InjectState<'_>, carrier: &mut dyn Injector, max_tags_len: usize) {
    let context = state.context;
    carrier.set(
        TRACE_ID,
        crate::util::id::low_bits(context.trace_id).to_string(),
    );
    carrier.set(PARENT_ID, context.span_id.to_string());
    if let Some(priority) = state.priority() {
        carrier.set(PRIORITY, priority.to_string());
    }
    if let Some(origin) = &context.upstream.origin {
        carrier.set(ORIGIN, origin.clone());
    }
    let tags = state
        .tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    if tags.is_empty() {
        return;
    }
    if tags.len() > max_tags_len {
        crate::util::diagnostics::debug(format_args!(
            "{TAGS} would be {} bytes, over the {max_tags_len}-byte limit: not injected",
            tags.len()
        ));
        if let Some(trace) = &context.local_trace {
            trace
                .inject_max_size
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        return;
    }
    carrier.set(TAGS, tags);
}

pub(super) fn extract<E: super::Extractor + ?Sized>(
    carrier: &E,
    max_tags_len: usize,
) -> Result<Option<Extracted>, ExtractError> {
    let Some(trace_id) = header(carrier, TRACE_ID)? else {
        return Ok(None);
    };
    let invalid = |header: &'static str, reason: String| ExtractError::Invalid { header, reason };
    let low: u64 = trace_id.parse().map_err(|_| {
        invalid(
            TRACE_ID,
            format!("{} is not an unsigned 64-bit number", quoted(trace_id)),
        )
    })?;
    if low == 0 {
        return Err(invalid(TRACE_ID, "the trace id is 0".to_owned()));
    }
    let parent =
        header(carrier, PARENT_ID)?.ok_or_else(|| invalid(PARENT_ID, "missing".to_owned()))?;
    let span_id: u64 = parent.parse().map_err(|_| {
        invalid(
            PARENT_ID,
            format!("{} is not an unsigned 64-bit number", quoted(parent)),
        )
    })?;
    // A Synthetics (or RUM) request names its trace but no parent span: a
    // zero parent with an origin continues the trace, with no parent.
    let has_origin = header(carrier, ORIGIN)?.is_some_and(|o| !o.is_empty());
    if span_id == 0 && !has_origin {
        return Err(invalid(PARENT_ID, "the parent id is 0".to_owned()));
    }
    let sampling_priority = match header(carrier, PRIORITY)? {
        None => None,
        Some(p) => Some(p.parse::<i8>().map_err(|_| {
            invalid(
                PRIORITY,
                format!("{} is not a sampling priority", quoted(p)),
            )
        })?),
    };
    let mut upstream = Upstream {
        // An origin with control characters is not kept (never re-injected).
        origin: header(carrier, ORIGIN)?
            .filter(|o| !o.is_empty() && !has_control(o))
            .map(str::to_owned),
        ..Upstream::default()
    };
    let mut high = 0u64;
    if let Some(tags) = header(carrier, TAGS)? {
        parse_tags(tags, max_tags_len, &mut upstream, &mut high);
    }
    Ok(Some(Extracted {
        trace_id: (u128::from(high) << 64) | u128::from(low),
        span_id,
        sampling_priority,
        upstream,
        last_parent_id: None,
    }))
}

/// `_dd.p.k=v,...`: only `_dd.p.*` keys travel; a malformed list, an
/// oversized one or a bad `_dd.p.tid` is noted in `_dd.propagation_error`
/// on the local root (as Datadog's tracers do) and the context is kept.
fn parse_tags(tags: &str, max_len: usize, upstream: &mut Upstream, high: &mut u64) {
    let mut error = |reason: String| {
        upstream
            .root_meta
            .push(("_dd.propagation_error".to_owned(), reason));
    };
    if tags.len() > max_len {
        error("extract_max_size".to_owned());
        return;
    }
    let mut parsed = Vec::new();
    for pair in tags.split(',').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            error("decoding_error".to_owned());
            return;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || value.is_empty() || key.contains(' ') {
            error("decoding_error".to_owned());
            return;
        }
        if key.starts_with("_dd.p.") && !super::valid_tag(key, value) {
            error("decoding_error".to_owned());
            return;
        }
        if key == "_dd.p.tid" {
            match u64::from_str_radix(value, 16) {
                Ok(tid) if value.len() == 16 && value.bytes().all(|b| !b.is_ascii_uppercase()) => {
                    *high = tid
                }
                _ => error(format!(
                    "malformed_tid {}",
                    crate::record::tag::truncated(value, 64)
                )),
            }
            continue;
        }
        if key.starts_with("_dd.p.") {
            parsed.push((key.to_owned(), value.to_owned()));
        }
    }
    upstream.propagated_tags = parsed;
}
