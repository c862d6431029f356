//! The `tracecontext` style: W3C `traceparent` and `tracestate`, with
//! Datadog's `dd=` member (`s:` priority, `o:` origin, `p:` last Datadog
//! parent, `t.*` propagated tags).

use super::{
    has_control, header, header_list, quoted, ExtractError, Extracted, InjectState, Injector,
};
use crate::record::Upstream;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
/// W3C allows at most 32 list members.
const MAX_MEMBERS: usize = 32;

/// `t.tid` goes into `dd=` only alongside the datadog style, as ddtrace
/// does: `traceparent` already carries the whole id.
pub(super) fn inject(state: &InjectState<'_>, carrier: &mut dyn Injector, with_datadog: bool) {
    let context = state.context;
    // A context with no parent span (a Synthetics request passed on as it
    // came) has no W3C form: a zero parent id is an invalid `traceparent`.
    if context.span_id == 0 {
        return;
    }
    let priority = state.priority();
    // Undecided counts as sampled: the tracer keeps by default.
    let flags = if priority.unwrap_or(1) > 0 {
        "01"
    } else {
        "00"
    };
    carrier.set(
        TRACEPARENT,
        format!(
            "00-{:032x}-{:016x}-{flags}",
            context.trace_id, context.span_id
        ),
    );
    let mut dd = vec![format!("p:{:016x}", context.span_id)];
    if let Some(priority) = priority {
        dd.push(format!("s:{priority}"));
    }
    if let Some(origin) = &context.upstream.origin {
        dd.push(format!("o:{}", sanitize(origin, true)));
    }
    for (key, value) in &state.tags {
        if key == "_dd.p.tid" && !with_datadog {
            continue;
        }
        if let Some(name) = key.strip_prefix("_dd.p.") {
            dd.push(format!(
                "t.{}:{}",
                sanitize(name, false),
                sanitize(value, true)
            ));
        }
    }
    let mut members = vec![format!("dd={}", dd.join(";"))];
    if let Some(others) = &context.upstream.tracestate {
        members.extend(
            others
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .take(MAX_MEMBERS - 1)
                .map(str::to_owned),
        );
    }
    carrier.set(TRACESTATE, members.join(","));
}

/// Characters that would break the `dd=` member become `_`; in values `=`
/// travels as `~`.
fn sanitize(text: &str, value: bool) -> String {
    text.chars()
        .map(|c| match c {
            '=' if value => '~',
            ',' | ';' | '=' | '~' => '_',
            c if (' '..='~').contains(&c) => c,
            _ => '_',
        })
        .collect()
}

pub(super) fn extract<E: super::Extractor + ?Sized>(
    carrier: &E,
    max_tags_len: usize,
) -> Result<Option<Extracted>, ExtractError> {
    let Some(traceparent) = header(carrier, TRACEPARENT)? else {
        return Ok(None);
    };
    let invalid = |reason: &str| ExtractError::Invalid {
        header: TRACEPARENT,
        reason: format!("{reason} in {}", quoted(traceparent)),
    };
    let parts: Vec<&str> = traceparent.split('-').collect();
    let [version, trace_id, parent_id, flags, rest @ ..] = parts.as_slice() else {
        return Err(invalid("four fields expected"));
    };
    let is_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !is_hex(version, 2) || *version == "ff" {
        return Err(invalid("invalid version"));
    }
    if *version == "00" && !rest.is_empty() {
        return Err(invalid("version 00 has exactly four fields"));
    }
    if !is_hex(trace_id, 32) {
        return Err(invalid("the trace id is not 32 lower-case hex digits"));
    }
    if !is_hex(parent_id, 16) {
        return Err(invalid("the parent id is not 16 lower-case hex digits"));
    }
    if !is_hex(flags, 2) {
        return Err(invalid("the flags are not 2 hex digits"));
    }
    let trace_id = u128::from_str_radix(trace_id, 16).map_err(|_| invalid("bad trace id"))?;
    let span_id = u64::from_str_radix(parent_id, 16).map_err(|_| invalid("bad parent id"))?;
    if trace_id == 0 || span_id == 0 {
        return Err(invalid("a zero id"));
    }
    let sampled = u8::from_str_radix(flags, 16).map_err(|_| invalid("bad flags"))? & 1 == 1;

    let mut upstream = Upstream::default();
    let mut priority = None;
    let mut last_parent_id = None;
    if let Some(tracestate) = header_list(carrier, TRACESTATE)?.as_deref() {
        let mut others = Vec::new();
        // `_dd.p.*` from `t.*`, bounded as `x-datadog-tags` is.
        let mut tags_len = 0;
        let mut tags_too_long = false;
        // W3C: at most 32 members. Members (and `dd=` fields) with control
        // characters are left out: never injected again.
        for member in tracestate
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .take(MAX_MEMBERS)
        {
            match member.strip_prefix("dd=") {
                Some(dd) => {
                    for field in dd.split(';').filter(|f| !has_control(f)) {
                        let Some((key, value)) = field.split_once(':') else {
                            continue;
                        };
                        if let Some(tag) = key.strip_prefix("t.") {
                            // `_dd.p.k=v` and a comma, as x-datadog-tags counts.
                            tags_len += "_dd.p.".len() + tag.len() + 1 + value.len() + 1;
                            if tags_len > max_tags_len + 1 {
                                // Too many: none are kept (as for
                                // x-datadog-tags); the other fields still are.
                                if !tags_too_long {
                                    tags_too_long = true;
                                    upstream.root_meta.push((
                                        "_dd.propagation_error".to_owned(),
                                        "extract_max_size".to_owned(),
                                    ));
                                }
                                continue;
                            }
                        }
                        match key {
                            "s" => priority = value.parse::<i8>().ok(),
                            "o" => upstream.origin = Some(value.replace('~', "=")),
                            "p" if value.len() == 16 => last_parent_id = Some(value.to_owned()),
                            _ => {
                                if let Some(tag) = key.strip_prefix("t.") {
                                    if tag != "tid" {
                                        upstream.propagated_tags.push((
                                            format!("_dd.p.{tag}"),
                                            value.replace('~', "="),
                                        ));
                                    }
                                }
                            }
                        }
                    }
                }
                None if has_control(member) => {}
                None => others.push(member),
            }
        }
        if tags_too_long {
            upstream.propagated_tags.clear();
        }
        if !others.is_empty() {
            upstream.tracestate = Some(
                others
                    .into_iter()
                    .take(MAX_MEMBERS - 1)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    // The sampled flag is authoritative; `s:` refines it when they agree.
    // When it overrules `s:`, no mechanism of the caller's made this
    // decision: a kept trace's decision maker becomes the default (`-0`).
    let agrees = priority.is_some_and(|p| (p > 0) == sampled);
    let sampling_priority = match priority {
        Some(p) if agrees => p,
        _ => i8::from(sampled),
    };
    if sampling_priority <= 0 {
        upstream.propagated_tags.retain(|(k, _)| k != "_dd.p.dm");
    } else if priority.is_some() && !agrees {
        upstream.propagated_tags.retain(|(k, _)| k != "_dd.p.dm");
        upstream
            .propagated_tags
            .push(("_dd.p.dm".to_owned(), "-0".to_owned()));
    }
    let sampling_priority = Some(sampling_priority);
    Ok(Some(Extracted {
        trace_id,
        span_id,
        sampling_priority,
        upstream,
        last_parent_id,
    }))
}
