//! Table tests of injection and extraction, with header values captured
//! from ddtrace 4.16 (see shared/TEST-PEERS.md).

use std::collections::HashMap;

use super::*;

/// ddtrace 4.16's injection for a sampled child span.
fn ddtrace_headers() -> Vec<(String, String)> {
    [
        ("x-datadog-trace-id", "1890081292213679918"),
        ("x-datadog-parent-id", "7628922200302827473"),
        ("x-datadog-sampling-priority", "1"),
        ("x-datadog-tags", "_dd.p.dm=-0,_dd.p.tid=6b0335ef00000000"),
        (
            "traceparent",
            "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
        ),
        (
            "tracestate",
            "dd=p:69df6052482437d1;s:1;t.dm:-0;t.tid:6b0335ef00000000,ot=rv:470046cb22258d;th:0",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

const TRACE_ID: u128 = 0x6b03_35ef_0000_0000_1a3a_eaeb_d301_f72e;

fn with(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn extracts_what_ddtrace_injects() {
    let context = Propagator::default().extract(&ddtrace_headers()).unwrap();
    assert_eq!(context.trace_id(), TRACE_ID);
    assert_eq!(context.span_id(), 7_628_922_200_302_827_473);
    assert_eq!(context.sampling_priority(), Some(1));
    assert_eq!(
        context.propagated_tags(),
        &[("_dd.p.dm".to_owned(), "-0".to_owned())]
    );
    assert_eq!(
        context.upstream.tracestate.as_deref(),
        Some("ot=rv:470046cb22258d;th:0")
    );
    assert!(context.upstream.root_meta.is_empty(), "the parents agree");
}

#[test]
fn injects_what_ddtrace_injects() {
    let remote = Propagator::default().extract(&ddtrace_headers()).unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    Propagator::default().inject(&remote, &mut out);
    let got: HashMap<String, String> = out.into_iter().collect();
    for (key, value) in ddtrace_headers() {
        assert_eq!(got.get(&key), Some(&value), "{key}");
    }
}

#[test]
fn header_names_are_case_insensitive() {
    let headers = with(&[("X-Datadog-Trace-Id", "5"), ("X-DATADOG-PARENT-ID", "6")]);
    let context = Propagator::default().extract(&headers).unwrap();
    assert_eq!((context.trace_id(), context.span_id()), (5, 6));
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "not found"),
        (
            &[("x-datadog-trace-id", "abc"), ("x-datadog-parent-id", "1")],
            "non-numeric trace id",
        ),
        (
            &[("x-datadog-trace-id", "0"), ("x-datadog-parent-id", "1")],
            "zero trace id",
        ),
        (
            &[("x-datadog-trace-id", "1"), ("x-datadog-parent-id", "0")],
            "zero parent id",
        ),
        (&[("x-datadog-trace-id", "1")], "missing parent id"),
        (
            &[
                ("x-datadog-trace-id", "18446744073709551616"),
                ("x-datadog-parent-id", "1"),
            ],
            "overflow",
        ),
        (
            &[
                ("x-datadog-trace-id", "1"),
                ("x-datadog-parent-id", "2"),
                ("x-datadog-sampling-priority", "high"),
            ],
            "bad priority",
        ),
        (
            &[
                ("x-datadog-trace-id", "1"),
                ("X-Datadog-Trace-Id", "2"),
                ("x-datadog-parent-id", "2"),
            ],
            "duplicate",
        ),
        (
            &[(
                "traceparent",
                "00-00000000000000000000000000000000-69df6052482437d1-01",
            )],
            "zero w3c trace id",
        ),
        (
            &[(
                "traceparent",
                "00-6b0335ef000000001a3aeaebd301f72e-0000000000000000-01",
            )],
            "zero w3c parent",
        ),
        (
            &[(
                "traceparent",
                "00-6B0335EF000000001A3AEAEBD301F72E-69df6052482437d1-01",
            )],
            "upper-case hex",
        ),
        (
            &[(
                "traceparent",
                "ff-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
            )],
            "version ff",
        ),
        (
            &[(
                "traceparent",
                "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1",
            )],
            "three fields",
        ),
        (
            &[(
                "traceparent",
                "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01-extra",
            )],
            "five fields in 00",
        ),
        (
            &[("traceparent", "00-6b0335ef-69df6052482437d1-01")],
            "short trace id",
        ),
        (
            &[(
                "traceparent",
                "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-zz",
            )],
            "bad flags",
        ),
    ];
    for (headers, what) in cases {
        assert!(
            Propagator::default().extract(&with(headers)).is_err(),
            "{what} was accepted"
        );
    }
}

#[test]
fn a_bad_style_does_not_hide_a_good_one() {
    let headers = with(&[
        ("x-datadog-trace-id", "garbage"),
        ("x-datadog-parent-id", "1"),
        (
            "traceparent",
            "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
        ),
    ]);
    let context = Propagator::default().extract(&headers).unwrap();
    assert_eq!(context.trace_id(), TRACE_ID);
}

#[test]
fn bad_datadog_tags_keep_the_context_and_note_the_error() {
    let long = format!("_dd.p.x={}", "y".repeat(600));
    let cases = [
        (long.as_str(), "extract_max_size"),
        ("_dd.p.dm", "decoding_error"),
        ("_dd.p.tid=XYZ", "malformed_tid XYZ"),
        (
            "_dd.p.tid=6B0335EF00000000",
            "malformed_tid 6B0335EF00000000",
        ),
    ];
    for (tags, error) in cases {
        let headers = with(&[
            ("x-datadog-trace-id", "1"),
            ("x-datadog-parent-id", "2"),
            ("x-datadog-tags", tags),
        ]);
        let context = Propagator::new(&[Style::Datadog])
            .extract(&headers)
            .unwrap();
        assert_eq!(context.trace_id(), 1, "{tags}: the upper bits stay unknown");
        assert_eq!(
            context.upstream.root_meta,
            vec![("_dd.propagation_error".to_owned(), error.to_owned())],
            "{tags}"
        );
    }
    let headers = with(&[
        ("x-datadog-trace-id", "1"),
        ("x-datadog-parent-id", "2"),
        ("x-datadog-tags", "other=1,_dd.p.team=a"),
    ]);
    let context = Propagator::new(&[Style::Datadog])
        .extract(&headers)
        .unwrap();
    assert_eq!(
        context.propagated_tags(),
        &[("_dd.p.team".to_owned(), "a".to_owned())],
        "only _dd.p.* travel"
    );
}

#[test]
fn same_trace_different_parents_prefers_w3c_and_keeps_the_datadog_parent() {
    let headers = with(&[
        ("x-datadog-trace-id", "1890081292213679918"),
        ("x-datadog-parent-id", "1111"),
        ("x-datadog-tags", "_dd.p.tid=6b0335ef00000000"),
        (
            "traceparent",
            "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
        ),
        ("tracestate", "dd=s:1;p:00000000000004d2"),
    ]);
    let context = Propagator::default().extract(&headers).unwrap();
    assert_eq!(context.span_id(), 0x69df_6052_4824_37d1);
    assert_eq!(
        context.upstream.root_meta,
        vec![("_dd.parent_id".to_owned(), "00000000000004d2".to_owned())]
    );
}

#[test]
fn different_traces_keep_the_first_style() {
    let headers = with(&[
        ("x-datadog-trace-id", "42"),
        ("x-datadog-parent-id", "43"),
        (
            "traceparent",
            "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
        ),
    ]);
    let context = Propagator::default().extract(&headers).unwrap();
    assert_eq!((context.trace_id(), context.span_id()), (42, 43));
}

#[test]
fn w3c_sampled_flag_and_dd_priority() {
    let cases = [
        ("01", "s:2", Some(2)),
        ("01", "s:-1", Some(1)),
        ("00", "s:1", Some(0)),
        ("00", "s:-1", Some(-1)),
        ("01", "", Some(1)),
    ];
    for (flags, s, priority) in cases {
        let headers = with(&[
            (
                "traceparent",
                &format!("00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-{flags}"),
            ),
            ("tracestate", &format!("dd={s};o:rum")),
        ]);
        let context = Propagator::new(&[Style::TraceContext])
            .extract(&headers)
            .unwrap();
        assert_eq!(context.sampling_priority(), priority, "{flags} {s}");
        assert_eq!(context.origin(), Some("rum"));
    }
}

#[test]
fn the_x_datadog_tags_bound_holds_on_injection() {
    let remote = SpanContext::remote(5, 6, Some(1))
        .unwrap()
        .with_propagated_tags(vec![("_dd.p.big".to_owned(), "x".repeat(600))]);
    let mut out: Vec<(String, String)> = Vec::new();
    Propagator::new(&[Style::Datadog]).inject(&remote, &mut out);
    assert!(out.iter().all(|(k, _)| k != "x-datadog-tags"), "{out:?}");
    assert!(out.iter().any(|(k, _)| k == "x-datadog-trace-id"));
}

#[test]
fn styles_can_be_chosen() {
    let remote = Propagator::default().extract(&ddtrace_headers()).unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    Propagator::new(&[Style::TraceContext]).inject(&remote, &mut out);
    let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["traceparent", "tracestate"]);
    let datadog_only = Propagator::new(&[Style::Datadog]).extract(&with(&[(
        "traceparent",
        "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
    )]));
    assert_eq!(datadog_only.unwrap_err(), ExtractError::NotFound);
}

#[test]
fn baggage_travels_with_the_context() {
    let headers = with(&[
        ("x-datadog-trace-id", "1"),
        ("x-datadog-parent-id", "2"),
        ("baggage", "user.id=42,tier=gold"),
    ]);
    let context = Propagator::default().extract(&headers).unwrap();
    assert_eq!(context.baggage().len(), 2);
    let mut out: Vec<(String, String)> = Vec::new();
    Propagator::default().inject(&context, &mut out);
    assert!(out.contains(&("baggage".to_owned(), "user.id=42,tier=gold".to_owned())));
}

#[cfg(feature = "http")]
#[test]
fn http_header_maps() {
    let mut headers = http::HeaderMap::new();
    let remote = Propagator::default().extract(&ddtrace_headers()).unwrap();
    Propagator::default().inject(&remote, &mut headers);
    let back = Propagator::default().extract(&headers).unwrap();
    assert_eq!(
        (back.trace_id(), back.span_id()),
        (TRACE_ID, remote.span_id())
    );
    headers.append("x-datadog-trace-id", http::HeaderValue::from_static("9"));
    assert!(matches!(
        Propagator::new(&[Style::Datadog]).extract(&headers),
        Err(ExtractError::Duplicate {
            header: "x-datadog-trace-id"
        })
    ));
    let mut binary = http::HeaderMap::new();
    binary.insert(
        "x-datadog-trace-id",
        http::HeaderValue::from_bytes(&[0xff, 0xfe]).unwrap(),
    );
    assert!(matches!(
        Propagator::new(&[Style::Datadog]).extract(&binary),
        Err(ExtractError::NotUtf8 { .. })
    ));
}

/// Headers whose values carry CR/LF: nothing of them may reach the headers
/// injected downstream (a caller could add headers of its own there).
#[test]
fn control_characters_from_a_request_are_never_injected_again() {
    let headers = with(&[
        ("x-datadog-trace-id", "1890081292213679918"),
        ("x-datadog-parent-id", "7628922200302827473"),
        ("x-datadog-origin", "synthetics\r\nx-evil: 1"),
        (
            "traceparent",
            "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
        ),
        (
            "tracestate",
            "dd=s:1;o:rum\r\nx-evil: 2;t.dm:-4,good=kept,bad=x\r\nx-evil: 3",
        ),
    ]);
    let context = Propagator::default().extract(&headers).unwrap();
    assert_eq!(context.origin(), None, "a bad origin is left out");
    let mut injected: HashMap<String, String> = HashMap::new();
    Propagator::default().inject(&context, &mut injected);
    for (name, value) in &injected {
        assert!(!has_control(value), "{name}: {value:?}");
    }
    assert!(
        injected["tracestate"].contains("good=kept"),
        "the good members are kept: {injected:?}"
    );
}

/// A 1 MB header makes an error of a few dozen bytes, not of 1 MB.
#[test]
fn errors_quote_at_most_64_bytes_of_a_header() {
    let huge = "9".repeat(1 << 20);
    for headers in [
        with(&[("x-datadog-trace-id", &huge), ("x-datadog-parent-id", "1")]),
        with(&[("traceparent", &huge)]),
    ] {
        let error = Propagator::default().extract(&headers).unwrap_err();
        let message = error.to_string();
        assert!(message.len() < 200, "{} bytes", message.len());
        assert!(message.contains("1048576 bytes"), "{message}");
    }
}

/// 100 000 `tracestate` members, and a `dd=` member of thousands of `t.*`
/// tags: W3C's 32 members at most, and the `t.*` tags bounded as
/// `x-datadog-tags` is (all dropped past the bound, noted on the root).
#[test]
fn tracestate_is_bounded_like_x_datadog_tags() {
    let mut dd = String::from("dd=s:1");
    for i in 0..3391 {
        dd.push_str(&format!(";t.k{i}:v"));
    }
    let mut tracestate = dd;
    for i in 0..100_000 {
        tracestate.push_str(&format!(",v{i}=x"));
    }
    let headers = with(&[
        (
            "traceparent",
            "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
        ),
        ("tracestate", &tracestate),
    ]);
    let context = Propagator::default().extract(&headers).unwrap();
    assert!(context.propagated_tags().is_empty());
    assert_eq!(
        context.sampling_priority(),
        Some(1),
        "the other fields stay"
    );
    let mut injected: HashMap<String, String> = HashMap::new();
    Propagator::default().inject(&context, &mut injected);
    let members = injected["tracestate"].split(',').count();
    assert!(members <= 32, "{members} members");
    assert!(
        injected["tracestate"].len() < 1024,
        "{}",
        injected["tracestate"].len()
    );

    // Within the bound, the tags are taken.
    let headers = with(&[
        (
            "traceparent",
            "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
        ),
        ("tracestate", "dd=s:1;t.dm:-4;t.usr.id:42"),
    ]);
    let context = Propagator::default().extract(&headers).unwrap();
    assert_eq!(context.propagated_tags().len(), 2);
}

/// system-tests `test_headers_tracestate_dd_propagate_origin`: in `dd=`, an
/// origin is a value: `=` becomes `~`; `,`, `;`, `~` become `_`.
#[test]
fn an_origin_in_tracestate_is_encoded_as_a_value() {
    let incoming = with(&[
        ("x-datadog-trace-id", "123456789"),
        ("x-datadog-parent-id", "987654321"),
        ("x-datadog-sampling-priority", "1"),
        ("x-datadog-origin", "synthetics~;=web,z"),
    ]);
    let context = Propagator::default().extract(&incoming).unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    Propagator::new(&[Style::TraceContext]).inject(&context, &mut out);
    let tracestate = &out.iter().find(|(k, _)| k == "tracestate").unwrap().1;
    assert!(tracestate.contains("o:synthetics__~web_z"), "{tracestate}");
}

/// HTTP and W3C Trace Context: several `tracestate` fields are one list
/// (system-tests `test_tracestate_multiple_headers_different_keys`,
/// `test_tracestate_empty_header`); only `traceparent` must be unique.
#[test]
fn several_tracestate_headers_are_one_list() {
    let incoming = with(&[
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
        ("tracestate", "foo=1"),
        ("tracestate", "bar=1,dd=s:2;o:rum"),
        ("tracestate", ""),
    ]);
    let context = Propagator::new(&[Style::TraceContext])
        .extract(&incoming)
        .unwrap();
    assert_eq!(context.span_id(), 0x1234_5678_9012_3456);
    assert_eq!(context.sampling_priority(), Some(2));
    assert_eq!(context.origin(), Some("rum"));
    assert_eq!(context.upstream.tracestate.as_deref(), Some("foo=1,bar=1"));

    let twice = with(&[
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
    ]);
    assert!(Propagator::new(&[Style::TraceContext])
        .extract(&twice)
        .is_err());
}

/// system-tests `..._propagatedtags_change_sampling_reset_dm`: when the
/// sampled flag overrules `s:`, the decision is the flag's, made by no
/// mechanism of the caller's: `_dd.p.dm` is reset to `-0` (kept) or
/// dropped (not kept).
#[test]
fn a_sampled_flag_that_overrules_the_priority_resets_the_decision_maker() {
    let kept = with(&[
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
        ("tracestate", "foo=1,dd=s:-1;t.dm:-4;t.usr.id:baz64~~"),
    ]);
    let context = Propagator::new(&[Style::TraceContext])
        .extract(&kept)
        .unwrap();
    assert_eq!(context.sampling_priority(), Some(1));
    assert!(context
        .propagated_tags()
        .contains(&("_dd.p.dm".to_owned(), "-0".to_owned())));
    assert!(context
        .propagated_tags()
        .contains(&("_dd.p.usr.id".to_owned(), "baz64==".to_owned())));

    let agreeing = with(&[
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
        ("tracestate", "dd=s:2;t.dm:-4"),
    ]);
    let context = Propagator::new(&[Style::TraceContext])
        .extract(&agreeing)
        .unwrap();
    assert_eq!(context.sampling_priority(), Some(2));
    assert!(context
        .propagated_tags()
        .contains(&("_dd.p.dm".to_owned(), "-4".to_owned())));
}

/// system-tests `test_distributed_headers_synthetics_sampling_decision`: a
/// Synthetics request names its trace but no parent span
/// (`x-datadog-parent-id: 0`): the trace, its decision and its origin
/// continue, with no parent. Without an origin, a zero parent is still
/// rejected.
#[test]
fn a_synthetics_request_without_a_parent_continues_its_trace() {
    let synthetics = with(&[
        ("x-datadog-trace-id", "123456789"),
        ("x-datadog-parent-id", "0"),
        ("x-datadog-sampling-priority", "1"),
        ("x-datadog-origin", "synthetics;=web,z"),
    ]);
    let context = Propagator::new(&[Style::Datadog])
        .extract(&synthetics)
        .unwrap();
    assert_eq!(context.trace_id(), 123_456_789);
    assert_eq!(context.span_id(), 0);
    assert_eq!(context.sampling_priority(), Some(1));
    assert_eq!(context.origin(), Some("synthetics;=web,z"));

    let no_origin = with(&[
        ("x-datadog-trace-id", "123456789"),
        ("x-datadog-parent-id", "0"),
    ]);
    assert!(Propagator::new(&[Style::Datadog])
        .extract(&no_origin)
        .is_err());
}

/// ddtrace's `HTTPPropagator.extract`: the Datadog context wins, and the
/// span started under it links to the tracecontext one, with its
/// tracestate and sampled flag.
#[test]
fn conflicting_trace_ids_give_a_terminated_context_link() {
    let headers = with(&[
        ("x-datadog-trace-id", "1234567890"),
        ("x-datadog-parent-id", "987654321"),
        ("x-datadog-sampling-priority", "2"),
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
        ("tracestate", "foo=1,dd=s:2;t.dm:-4"),
    ]);
    let context = Propagator::default().extract(&headers).unwrap();
    assert_eq!(context.trace_id_low(), 1234567890);
    assert_eq!(context.span_id(), 987654321);
    let links = &context.upstream.links;
    assert_eq!(links.len(), 1);
    let link = &links[0];
    assert_eq!(link.trace_id, 0x1234_5678_9012_3456_7890_1234_5678_9012);
    assert_eq!(link.span_id, 0x1234_5678_9012_3456);
    assert_eq!(link.flags, Some(1));
    let tracestate = link.tracestate.as_deref().unwrap();
    assert!(
        tracestate.starts_with("dd=p:1234567890123456;s:2;t.dm:-4"),
        "{tracestate}"
    );
    assert!(tracestate.ends_with(",foo=1"), "{tracestate}");
    assert_eq!(
        link.attributes,
        [
            ("reason".to_owned(), "terminated_context".to_owned()),
            ("context_headers".to_owned(), "tracecontext".to_owned()),
        ]
    );
    // No _dd.parent_id: the W3C context is another trace's.
    assert!(context.upstream.root_meta.is_empty());

    // tracecontext first: the Datadog context is the one linked, without
    // a tracestate.
    let w3c_first = Propagator::new(&[Style::TraceContext, Style::Datadog]);
    let context = w3c_first.extract(&headers).unwrap();
    assert_eq!(context.span_id(), 0x1234_5678_9012_3456);
    let link = &context.upstream.links[0];
    assert_eq!((link.trace_id, link.span_id), (1234567890, 987654321));
    assert_eq!(link.tracestate, None);
    assert_eq!(link.attributes[1].1, "datadog");
}

#[test]
fn agreeing_styles_give_no_link() {
    let context = Propagator::default().extract(&ddtrace_headers()).unwrap();
    assert!(context.upstream.links.is_empty());
    // 64-bit Datadog ids naming the W3C trace's lower half: the same trace.
    let headers = with(&[
        ("x-datadog-trace-id", "1890081292213679918"),
        ("x-datadog-parent-id", "7628922200302827473"),
        (
            "traceparent",
            "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
        ),
    ]);
    let context = Propagator::default().extract(&headers).unwrap();
    assert!(context.upstream.links.is_empty());
}
