//! A finished trace chunk drawn as a tree of text, children in start
//! order: what the console prints.
//!
//! ```text
//! trace 6b0386a1000000004ba3c8a1e2b7d2f1 · service quickstart · env dev
//! └─ checkout  POST /checkout  12.41 ms  component=store
//!    ├─ lookup  0.02 ms
//!    └─ lookup  0.01 ms  ✗ StoreError: no order 3
//! ```

use std::collections::HashMap;
use std::fmt::Write;

use crate::config::Config;
use crate::record::tag::StaticValue;
use crate::record::Chunk;
use crate::record::SpanRecord;

/// Renders one chunk as a tree (children in start order).
pub(crate) fn render(chunk: &Chunk, config: &Config) -> String {
    let spans = &chunk.spans;
    let ids: HashMap<u64, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for (i, span) in spans.iter().enumerate() {
        let parent = ids.get(&span.parent_id).copied();
        children.entry(parent).or_default().push(i);
    }
    for list in children.values_mut() {
        list.sort_by_key(|i| spans[*i].start);
    }
    let mut out = format!("trace {:032x} · service {}", chunk.trace_id, config.service);
    if let Some(env) = &config.env {
        let _ = write!(out, " · env {env}");
    }
    if chunk.sampling.priority <= 0 {
        out.push_str(" · dropped by sampling (still sent for stats)");
    }
    out.push('\n');
    // Drawn with a stack of its own, not by recursion: a trace 5000 spans
    // deep (a recursive function) overflowed the thread's stack. Each span
    // is drawn once, whatever its parent ids say.
    let roots = children.get(&None).map(Vec::as_slice).unwrap_or_default();
    let mut todo: Vec<Pending> = roots
        .iter()
        .enumerate()
        .rev()
        .map(|(n, &index)| Pending {
            index,
            prefix: String::new(),
            last: n + 1 == roots.len(),
            depth: 0,
        })
        .collect();
    let mut drawn = vec![false; spans.len()];
    while let Some(next) = todo.pop() {
        if std::mem::replace(&mut drawn[next.index], true) {
            continue;
        }
        line(&mut out, &spans[next.index], &next, config);
        let Some(list) = children.get(&Some(next.index)) else {
            continue;
        };
        // Past a depth, lines stop moving right and say their depth.
        let prefix = if next.depth < MAX_INDENT {
            format!("{}{}", next.prefix, if next.last { "   " } else { "│  " })
        } else {
            next.prefix.clone()
        };
        for (n, &index) in list.iter().enumerate().rev() {
            todo.push(Pending {
                index,
                prefix: prefix.clone(),
                last: n + 1 == list.len(),
                depth: next.depth + 1,
            });
        }
    }
    out
}

/// How deep the tree is indented; deeper spans are drawn at that depth.
const MAX_INDENT: usize = 32;

/// A span still to draw, where it goes in the tree.
struct Pending {
    index: usize,
    prefix: String,
    last: bool,
    depth: usize,
}

fn line(out: &mut String, span: &SpanRecord, at: &Pending, config: &Config) {
    let branch = if at.last { "└─ " } else { "├─ " };
    let _ = write!(out, "{}{branch}", at.prefix);
    if at.depth > MAX_INDENT {
        let _ = write!(out, "[depth {}] ", at.depth);
    }
    let _ = write!(out, "{}", span.name());
    if let Some(resource) = span.resource().filter(|r| *r != span.name()) {
        let _ = write!(out, "  {resource}");
    }
    #[allow(clippy::cast_precision_loss)]
    let millis = span.duration_ns as f64 / 1e6;
    let _ = write!(out, "  {millis:.2} ms");
    if let Some(service) = span.service().filter(|s| *s != config.service) {
        let _ = write!(out, "  [{service}]");
    }
    // function-name repeats what the name says in nearly every span.
    for tag in span.spec.tags.iter().filter(|t| t.key != "function-name") {
        match tag.value {
            StaticValue::Str(value) => {
                let _ = write!(out, "  {}={value}", tag.key);
            }
            StaticValue::Number(value) => {
                let _ = write!(out, "  {}={value}", tag.key);
            }
        }
    }
    for (key, value) in span.meta() {
        if !key.starts_with("error.") {
            let _ = write!(out, "  {key}={value}");
        }
    }
    for (key, value) in span.metrics() {
        let _ = write!(out, "  {key}={value}");
    }
    if span.error {
        let find = |key: &str| {
            span.meta()
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.to_string())
        };
        let kind = find("error.type").unwrap_or_default();
        let kind = kind.rsplit("::").next().unwrap_or_default();
        let message = find("error.message").unwrap_or_default();
        let _ = write!(out, "  ✗ {kind}: {message}");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::spec::SpanSpec;
    use crate::record::tag::{StaticTag, TagValue};
    use crate::record::SamplingDecision;
    use crate::runtime::TracerCore;
    use crate::trace::TraceShared;

    #[test]
    fn renders_a_tree_with_errors_and_tags() {
        static ROOT: SpanSpec = SpanSpec::new("checkout")
            .with_resource("POST /checkout")
            .with_tags(&[StaticTag::str("component", "store")]);
        static CHILD: SpanSpec = SpanSpec::new("lookup");
        let config = Config::builder().service("shop").env("dev").build();
        let (core, _) = TracerCore::capturing(config.clone());
        let trace = TraceShared::new(
            &core,
            0xabc,
            1,
            SamplingDecision::inherited(1),
            crate::record::Upstream::none_ref(),
        );
        let mut root = SpanRecord::new(1, 0, &ROOT);
        root.start = 100;
        root.duration_ns = 12_410_000;
        let mut first = SpanRecord::new(2, 1, &CHILD);
        first.start = 200;
        first.duration_ns = 20_000;
        let mut second = SpanRecord::new(3, 1, &CHILD);
        second.start = 300;
        second.set_tag("order".into(), TagValue::from(3));
        second.set_error_fields("no order 3".into(), "shop::StoreError".into(), None);
        let chunk = trace.chunk(vec![second, first, root], SamplingDecision::inherited(1));
        let text = render(&chunk, &config);
        assert_eq!(
            text,
            "trace 00000000000000000000000000000abc · service shop · env dev\n\
             └─ checkout  POST /checkout  12.41 ms  component=store\n   \
             ├─ lookup  0.02 ms\n   \
             └─ lookup  0.00 ms  order=3  ✗ StoreError: no order 3\n"
        );
    }

    #[test]
    fn a_trace_5000_spans_deep_is_drawn_without_recursion() {
        static DEEP: SpanSpec = SpanSpec::new("recurse");
        let config = Config::builder().service("deep").build();
        let (core, _) = TracerCore::capturing(config.clone());
        let trace = TraceShared::new(
            &core,
            0xdee9,
            1,
            SamplingDecision::inherited(1),
            crate::record::Upstream::none_ref(),
        );
        let spans: Vec<SpanRecord> = (1..=5000u64)
            .map(|id| {
                let mut span = SpanRecord::new(id, id - 1, &DEEP);
                span.start = id;
                span
            })
            .collect();
        let chunk = trace.chunk(spans, SamplingDecision::inherited(1));
        // On a small stack, as the console's own thread might have.
        let text = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || render(&chunk, &config))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(text.lines().count(), 5001);
        assert!(
            text.contains("[depth 4999] recurse"),
            "the deepest says its depth"
        );
        assert!(
            text.lines().all(|l| l.len() < 200),
            "indentation is bounded"
        );
    }
}
