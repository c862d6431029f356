//! Orchestrion's naming rules and tag handling, asserted on exact span trees
//! through the in-memory exporter (fast; the wire is covered elsewhere).

use std::sync::MutexGuard;

use ddspan::tracer;
use ddspan::{dd_span, FinishedSpan, MemoryExporter};

#[path = "support/memory.rs"]
mod memory;

fn capture() -> (MutexGuard<'static, ()>, MemoryExporter) {
    memory::capture("naming")
}

/// `name(child, child)` lines, children in start order: an exact tree.
fn tree(spans: &[FinishedSpan]) -> String {
    fn render(spans: &[FinishedSpan], parent: u64, out: &mut Vec<String>, depth: usize) {
        let mut children: Vec<&FinishedSpan> =
            spans.iter().filter(|s| s.parent_id == parent).collect();
        children.sort_by_key(|s| s.span_id);
        for child in children {
            out.push(format!("{}{}", "  ".repeat(depth), child.name));
            render(spans, child.span_id, out, depth + 1);
        }
    }
    let mut out = Vec::new();
    render(spans, 0, &mut out, 0);
    out.join("\n")
}

fn named<'a>(spans: &'a [FinishedSpan], name: &str) -> &'a FinishedSpan {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} in {spans:#?}"))
}

#[dd_span(span.name = "explicit", first = "ignored-for-functions")]
fn explicit_name() {}

#[dd_span(first = "a", second = "b")]
fn function_name_wins_over_tags() {}

#[dd_span]
fn closures() {
    let tagged = #[dd_span(kind = "tagged.value", other = "x")]
    || ();
    let named = #[dd_span(span.name = "closure.named", kind = "ignored")]
    || ();
    let unnamed = #[dd_span]
    || ();
    tagged();
    named();
    unnamed();
}

#[test]
fn names_follow_orchestrions_precedence() {
    let (_guard, spans) = capture();
    explicit_name();
    function_name_wins_over_tags();
    closures();
    let spans = spans.take();
    assert_eq!(
        tree(&spans)
            .lines()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "explicit",
            "function_name_wins_over_tags",
            "closures",
            "  tagged.value",
            "  closure.named",
            "  closures.closure",
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        named(&spans, "explicit").meta["function-name"],
        "explicit_name"
    );
    assert_eq!(
        named(&spans, "explicit").meta["first"],
        "ignored-for-functions"
    );
    assert!(!named(&spans, "closure.named")
        .meta
        .contains_key("function-name"));
}

#[dd_span(text = "v", int = 42, negative = -3, float = 2.5, flag = true, off = false)]
fn literal_kinds() {}

#[dd_span(resource.name = "GET /users", service.name = "users-api", span.type = "web")]
fn special_keys() {}

#[test]
fn literals_become_meta_or_metrics_and_special_keys_set_fields() {
    let (_guard, spans) = capture();
    literal_kinds();
    special_keys();
    let spans = spans.take();
    let literals = named(&spans, "literal_kinds");
    assert_eq!(literals.meta["text"], "v");
    assert_eq!(literals.metrics["int"], 42.0);
    assert_eq!(literals.metrics["negative"], -3.0);
    assert_eq!(literals.metrics["float"], 2.5);
    assert_eq!(literals.metrics["flag"], 1.0);
    assert_eq!(literals.metrics["off"], 0.0);
    let special = named(&spans, "special_keys");
    assert_eq!(special.resource, "GET /users");
    assert_eq!(special.service, "users-api");
    assert_eq!(special.span_type, "web");
    for key in ["resource.name", "service.name", "span.type"] {
        assert!(
            !special.meta.contains_key(key),
            "{key} is a field, not a tag"
        );
    }
    assert_eq!(
        named(&spans, "literal_kinds").service,
        "naming",
        "the tracer's service by default"
    );
}

struct Cart;

#[dd_span(team = "cart")]
impl Cart {
    fn outer(&self) {
        self.inner();
    }

    fn inner(&self) {}
}

#[test]
fn methods_nest_under_their_callers() {
    let (_guard, spans) = capture();
    Cart.outer();
    let spans = spans.take();
    assert_eq!(tree(&spans), "outer\n  inner");
    assert!(spans.iter().all(|s| s.meta["team"] == "cart"));
}

#[dd_span(child_of = parent)]
fn continues(parent: Option<ddspan::SpanContext>) {}

#[dd_span(child_of = &headers)]
async fn continues_async(headers: Vec<(String, String)>) {}

/// The first of two values: a call with two generic arguments.
fn first<A, B>(first: A, _second: B) -> A {
    first
}

// The commas in `::<A, B>` do not separate arguments: `team` is the next one.
#[dd_span(child_of = first::<Option<ddspan::SpanContext>, u8>(parent, 0), team = "generic")]
fn continues_generic(parent: Option<ddspan::SpanContext>) {}

#[test]
fn child_of_takes_a_call_with_generic_arguments() {
    let (_guard, spans) = capture();
    let remote = ddspan::SpanContext::remote(7 << 64 | 5, 42, Some(1)).unwrap();
    continues_generic(Some(remote.clone()));
    let spans = spans.take();
    let span = named(&spans, "continues_generic");
    assert_eq!((span.trace_id, span.parent_id), (remote.trace_id(), 42));
    assert_eq!(span.meta["team"], "generic");
}

#[test]
fn child_of_continues_a_given_context() {
    let (_guard, spans) = capture();
    let remote = ddspan::SpanContext::remote(0xabc_u128 << 64 | 77, 99, Some(2)).unwrap();
    {
        let _unrelated_active = tracer::trace("active");
        continues(Some(remote.clone()));
        continues(None);
    }
    let headers = vec![
        ("x-datadog-trace-id".to_owned(), "55".to_owned()),
        ("x-datadog-parent-id".to_owned(), "66".to_owned()),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(continues_async(headers));
    let spans = spans.take();
    let continued: Vec<&FinishedSpan> = spans.iter().filter(|s| s.name == "continues").collect();
    assert_eq!(continued.len(), 2);
    let child = continued
        .iter()
        .find(|s| s.parent_id == 99)
        .expect("under the remote parent");
    assert_eq!(child.trace_id, remote.trace_id());
    let root = continued.iter().find(|s| s.parent_id != 99).unwrap();
    assert_eq!(
        root.parent_id, 0,
        "None: a new root, not the active span's child"
    );
    let from_headers = named(&spans, "continues_async");
    assert_eq!((from_headers.trace_id, from_headers.parent_id), (55, 66));
}
