//! Span links and span events on the wire, in Datadog's two forms:
//! - native (v0.4 only): `span_links`, an array of maps (`trace_id`,
//!   `trace_id_high`, `span_id`, `attributes`, `tracestate`, `flags`), and
//!   `span_events`, an array of maps (`name`, `time_unix_nano`, typed
//!   `attributes`: `{type, string_value | bool_value | int_value |
//!   double_value | array_value: {values}}`), as the agent's `span.proto`
//!   and ddapm-test-agent decode them;
//! - meta JSON (v0.5, and events for an agent that does not advertise
//!   `span_events` in `/info`): `_dd.span_links`, ids as hex text, and
//!   `events`, attributes as JSON values, as ddtrace writes them.
//!
//! `flags`: natively with bit 31 ("set"), as `span.proto` asks; in the JSON
//! the W3C flags alone (system-tests' reader adds the bit itself).

use crate::export::msgpack::{write_array_len, write_f64, write_int, write_str, write_uint};
use crate::record::link::{AttributeValue, Event, Link, FLAGS_SET};
use crate::record::tag::MAX_TAG_VALUE_LEN;
use crate::util::id;

/// The meta key of links in JSON.
pub(crate) const LINKS_META_KEY: &str = "_dd.span_links";
/// The meta key of events in JSON.
pub(crate) const EVENTS_META_KEY: &str = "events";

fn write_map_len(out: &mut Vec<u8>, len: usize) {
    match u32::try_from(len) {
        Ok(n) if n < 16 => out.push(0x80 | n as u8),
        Ok(n) if n <= u32::from(u16::MAX) => {
            out.push(0xde);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0xdf);
            out.extend_from_slice(&n.unwrap_or(u32::MAX).to_be_bytes());
        }
    }
}

fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.push(if value { 0xc3 } else { 0xc2 });
}

/// `span_links`: the value (an array of maps), its key written by the
/// caller.
pub(crate) fn write_links(out: &mut Vec<u8>, links: &[Link]) {
    write_array_len(out, links.len());
    for link in links {
        let high = id::high_bits(link.trace_id);
        let fields = 2
            + usize::from(high != 0)
            + usize::from(!link.attributes.is_empty())
            + usize::from(link.tracestate.is_some())
            + usize::from(link.flags.is_some());
        write_map_len(out, fields);
        write_str(out, "trace_id");
        write_uint(out, id::low_bits(link.trace_id));
        if high != 0 {
            write_str(out, "trace_id_high");
            write_uint(out, high);
        }
        write_str(out, "span_id");
        write_uint(out, link.span_id);
        if !link.attributes.is_empty() {
            write_str(out, "attributes");
            write_map_len(out, link.attributes.len());
            for (key, value) in &link.attributes {
                write_str(out, key);
                write_str(out, value);
            }
        }
        if let Some(tracestate) = &link.tracestate {
            write_str(out, "tracestate");
            write_str(out, tracestate);
        }
        if let Some(flags) = link.flags {
            write_str(out, "flags");
            write_uint(out, u64::from(flags | FLAGS_SET));
        }
    }
}

/// `span_events`: the value (an array of maps), its key written by the
/// caller.
pub(crate) fn write_events(out: &mut Vec<u8>, events: &[Event]) {
    write_array_len(out, events.len());
    for event in events {
        write_map_len(out, 2 + usize::from(!event.attributes.is_empty()));
        write_str(out, "name");
        write_str(out, &event.name);
        write_str(out, "time_unix_nano");
        write_uint(out, event.time_unix_nano);
        if !event.attributes.is_empty() {
            write_str(out, "attributes");
            write_map_len(out, event.attributes.len());
            for (key, value) in &event.attributes {
                write_str(out, key);
                write_any_value(out, value);
            }
        }
    }
}

fn write_any_value(out: &mut Vec<u8>, value: &AttributeValue) {
    write_map_len(out, 2);
    write_str(out, "type");
    write_uint(out, u64::from(value.type_number()));
    match value {
        AttributeValue::String(s) => {
            write_str(out, "string_value");
            write_str(out, s);
        }
        AttributeValue::Bool(b) => {
            write_str(out, "bool_value");
            write_bool(out, *b);
        }
        AttributeValue::Int(i) => {
            write_str(out, "int_value");
            write_int(out, *i);
        }
        AttributeValue::Double(d) => {
            write_str(out, "double_value");
            write_f64(out, *d);
        }
        AttributeValue::Array(items) => {
            write_str(out, "array_value");
            write_map_len(out, 1);
            write_str(out, "values");
            write_array_len(out, items.len());
            for item in items {
                write_any_value(out, item);
            }
        }
    }
}

/// `_dd.span_links` as ddtrace writes it: as many whole links as fit in a
/// tag value.
pub(crate) fn links_json(links: &[Link]) -> String {
    let items = links.iter().map(|link| {
        let mut item = serde_json::Map::new();
        item.insert("trace_id".into(), format!("{:032x}", link.trace_id).into());
        item.insert("span_id".into(), format!("{:016x}", link.span_id).into());
        if !link.attributes.is_empty() {
            let attributes: serde_json::Map<String, serde_json::Value> = link
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().into()))
                .collect();
            item.insert("attributes".into(), attributes.into());
        }
        if let Some(tracestate) = &link.tracestate {
            item.insert("tracestate".into(), tracestate.as_str().into());
        }
        if let Some(flags) = link.flags {
            item.insert("flags".into(), flags.into());
        }
        serde_json::Value::Object(item)
    });
    bounded_json_array(items)
}

/// `events` as ddtrace writes it: attributes as JSON values.
pub(crate) fn events_json(events: &[Event]) -> String {
    let items = events.iter().map(|event| {
        let mut item = serde_json::Map::new();
        item.insert("name".into(), event.name.as_str().into());
        item.insert("time_unix_nano".into(), event.time_unix_nano.into());
        if !event.attributes.is_empty() {
            let attributes: serde_json::Map<String, serde_json::Value> = event
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), json_value(v)))
                .collect();
            item.insert("attributes".into(), attributes.into());
        }
        serde_json::Value::Object(item)
    });
    bounded_json_array(items)
}

fn json_value(value: &AttributeValue) -> serde_json::Value {
    match value {
        AttributeValue::String(s) => s.as_str().into(),
        AttributeValue::Bool(b) => (*b).into(),
        AttributeValue::Int(i) => (*i).into(),
        AttributeValue::Double(d) => serde_json::Number::from_f64(*d)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        AttributeValue::Array(items) => items.iter().map(json_value).collect(),
    }
}

/// A JSON array of the items that fit, whole, in a tag value: a cut JSON
/// text would be unreadable.
fn bounded_json_array(items: impl Iterator<Item = serde_json::Value>) -> String {
    let mut out = String::from("[");
    for item in items {
        let text = item.to_string();
        if out.len() + text.len() + 2 > MAX_TAG_VALUE_LEN {
            break;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&text);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::encode::Encoder;
    use crate::export::encode_v05::{to_v04, StringTable, V05};
    use crate::export::msgpack::{patch_array32, ARRAY32_HEADER_LEN};
    use crate::record::{Chunk, SpanRecord};
    use serde_json::{json, Value};

    /// A chunk of one span with two links and two events.
    fn chunk() -> (std::sync::Arc<crate::trace::TraceShared>, Chunk) {
        let config = crate::Config::builder().service("svc").build();
        let (trace, mut chunk) = crate::export::encode::tests::chunk(config);
        let mut span = SpanRecord::named(12, 10, "linked".into());
        let mut link = Link {
            trace_id: (16u128 << 64) | 1234567890,
            span_id: 9876543210,
            tracestate: Some("dd=s:2,foo=1".into()),
            flags: Some(1),
            attributes: Vec::new(),
        };
        link.with_attributes([("foo", "bar".into()), ("array", vec!["a", "b"].into())]);
        span.add_link(link, 0);
        span.add_link(
            Link {
                trace_id: 77,
                span_id: 78,
                tracestate: None,
                flags: None,
                attributes: Vec::new(),
            },
            0,
        );
        let (event, _) = Event::new(
            "event_name",
            123_450_000,
            [
                ("string", "bar".into()),
                ("bool", true.into()),
                ("int", 1.into()),
                ("double", 2.3.into()),
                ("int_arr", vec![5, 6].into()),
            ],
        );
        span.add_event(event, 0);
        let (bare, _) = Event::new("other", 5, []);
        span.add_event(bare, 0);
        chunk.spans.push(span);
        (trace, chunk)
    }

    fn v04(encoder: &Encoder, chunk: &Chunk) -> Value {
        let mut out = vec![0; ARRAY32_HEADER_LEN];
        encoder.encode_chunk(&mut out, chunk);
        patch_array32(&mut out, 0, 1);
        let traces: Value = rmp_serde::from_slice(&out).expect("a valid v0.4 payload");
        span_12(traces)
    }

    fn span_12(traces: Value) -> Value {
        traces[0]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["span_id"] == 12)
            .cloned()
            .unwrap()
    }

    fn expected_links_native() -> Value {
        json!([
            {
                "trace_id": 1234567890u64,
                "trace_id_high": 16,
                "span_id": 9876543210u64,
                "attributes": {"foo": "bar", "array.0": "a", "array.1": "b"},
                "tracestate": "dd=s:2,foo=1",
                "flags": 2147483649u64,
            },
            {"trace_id": 77, "span_id": 78},
        ])
    }

    #[test]
    fn v04_links_are_native_and_events_native_when_the_agent_takes_them() {
        let (_trace, chunk) = chunk();
        let mut encoder = Encoder::new(&crate::Config::builder().service("svc").build());
        encoder.native_span_events = true;
        let span = v04(&encoder, &chunk);
        assert_eq!(span["span_links"], expected_links_native());
        assert_eq!(
            span["span_events"],
            json!([
                {
                    "name": "event_name",
                    "time_unix_nano": 123450000,
                    "attributes": {
                        "string": {"type": 0, "string_value": "bar"},
                        "bool": {"type": 1, "bool_value": true},
                        "int": {"type": 2, "int_value": 1},
                        "double": {"type": 3, "double_value": 2.3},
                        "int_arr": {"type": 4, "array_value": {"values": [
                            {"type": 2, "int_value": 5}, {"type": 2, "int_value": 6}
                        ]}},
                    },
                },
                {"name": "other", "time_unix_nano": 5},
            ])
        );
        assert!(span["meta"].get("events").is_none());
        assert!(span["meta"].get("_dd.span_links").is_none());
        // Spans without links keep the 12 fields.
        let root = rmp_serde::from_slice::<Value>(&{
            let mut out = vec![0; ARRAY32_HEADER_LEN];
            encoder.encode_chunk(&mut out, &chunk);
            patch_array32(&mut out, 0, 1);
            out
        })
        .unwrap()[0][0]
            .clone();
        assert_eq!(root.as_object().unwrap().len(), 12);
    }

    #[test]
    fn v04_events_go_to_meta_when_the_agent_does_not_take_them() {
        let (_trace, chunk) = chunk();
        let encoder = Encoder::new(&crate::Config::builder().service("svc").build());
        let span = v04(&encoder, &chunk);
        assert_eq!(span["span_links"], expected_links_native());
        assert!(span.get("span_events").is_none());
        let events: Value = serde_json::from_str(span["meta"]["events"].as_str().unwrap()).unwrap();
        assert_eq!(
            events,
            json!([
                {
                    "name": "event_name",
                    "time_unix_nano": 123450000,
                    "attributes": {"string": "bar", "bool": true, "int": 1, "double": 2.3, "int_arr": [5, 6]},
                },
                {"name": "other", "time_unix_nano": 5},
            ])
        );
    }

    #[test]
    fn v05_has_both_as_meta_json() {
        let (_trace, chunk) = chunk();
        let mut encoder = Encoder::new(&crate::Config::builder().service("svc").build());
        encoder.native_span_events = true;
        let mut table = StringTable::new();
        let mut traces = vec![0; ARRAY32_HEADER_LEN];
        encoder.encode_chunk_to(&mut V05::new(&mut table, &mut traces), &chunk);
        patch_array32(&mut traces, 0, 1);
        let mut payload = Vec::new();
        table.write_prefix(&mut payload);
        payload.extend_from_slice(&traces);
        // Read back through the v0.5 to v0.4 rewrite (its own tests check
        // it against a v0.5 decoder).
        let (v04, _) = to_v04(&payload).expect("a v0.5 payload");
        let span = span_12(rmp_serde::from_slice(&v04).unwrap());
        assert!(span.get("span_links").is_none());
        let links: Value =
            serde_json::from_str(span["meta"]["_dd.span_links"].as_str().unwrap()).unwrap();
        assert_eq!(
            links,
            json!([
                {
                    "trace_id": "000000000000001000000000499602d2",
                    "span_id": "000000024cb016ea",
                    "attributes": {"foo": "bar", "array.0": "a", "array.1": "b"},
                    "tracestate": "dd=s:2,foo=1",
                    "flags": 1,
                },
                {"trace_id": "0000000000000000000000000000004d", "span_id": "000000000000004e"},
            ])
        );
        let events: Value = serde_json::from_str(span["meta"]["events"].as_str().unwrap()).unwrap();
        assert_eq!(events[0]["attributes"]["int_arr"], json!([5, 6]));
    }

    #[test]
    fn meta_json_keeps_whole_items_under_the_tag_limit() {
        let big = "x".repeat(MAX_TAG_VALUE_LEN / 3);
        let events: Vec<Event> = (0..5).map(|i| Event::new(&big, i, []).0).collect();
        let json = events_json(&events);
        assert!(json.len() <= MAX_TAG_VALUE_LEN);
        let parsed: Vec<Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.len(), 2);
    }
}
