//! The JSON of the parametric protocol: what system-tests' client sends
//! (`utils/docker_fixtures/_test_clients/_test_client_parametric.py`) and
//! what it reads back.
//!
//! Ids travel as JSON integers; the client also accepts (and sends back)
//! `"0x<hex>"` and decimal strings, so both are read. Key/value lists are
//! `[[key, value], ...]`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A span id as the client sends it back: a JSON integer, `"0x<hex>"` or a
/// decimal string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Id(pub(crate) u64);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(n) => n
                .as_u64()
                .map(Id)
                .ok_or_else(|| D::Error::custom(format!("not a span id: {n}"))),
            Value::String(s) => parse_id(&s)
                .map(Id)
                .ok_or_else(|| D::Error::custom(format!("not a span id: {s:?}"))),
            other => Err(D::Error::custom(format!("not a span id: {other}"))),
        }
    }
}

fn parse_id(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A value of a `[[key, value], ...]` list or of `set_meta`, as text: the
/// Datadog-API tests send strings; other JSON (numbers, booleans from the
/// OTel interop tests) is kept as its JSON text.
fn text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// `[[key, value], ...]`.
fn pairs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, String)>, D::Error> {
    let raw: Vec<(String, Value)> = Vec::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| text(v).map(|v| (k, v)))
        .collect())
}

/// `POST /trace/span/start`.
#[derive(Debug, Deserialize)]
pub(crate) struct StartSpan {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) service: Option<String>,
    #[serde(default)]
    pub(crate) resource: Option<String>,
    #[serde(default)]
    pub(crate) parent_id: Option<Id>,
    #[serde(default, rename = "type")]
    pub(crate) span_type: Option<String>,
    #[serde(default, deserialize_with = "pairs")]
    pub(crate) span_tags: Vec<(String, String)>,
}

/// The body of every call on one span: `{"span_id": ...}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SpanArgs {
    pub(crate) span_id: Id,
}

/// `POST /trace/span/set_meta`.
#[derive(Debug, Deserialize)]
pub(crate) struct SetMeta {
    pub(crate) span_id: Id,
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) value: Value,
}

impl SetMeta {
    /// The value as a string tag; `None` for JSON `null`.
    pub(crate) fn text(self) -> Option<(String, String)> {
        text(self.value).map(|v| (self.key, v))
    }
}

/// `POST /trace/span/set_metric`.
#[derive(Debug, Deserialize)]
pub(crate) struct SetMetric {
    pub(crate) span_id: Id,
    pub(crate) key: String,
    /// A number in the Datadog-API tests; lists and `null` (OTel interop
    /// tests) are not metrics and are ignored.
    #[serde(default)]
    pub(crate) value: Value,
}

/// `POST /trace/span/set_resource`.
#[derive(Debug, Deserialize)]
pub(crate) struct SetResource {
    pub(crate) span_id: Id,
    pub(crate) resource: String,
}

/// `POST /trace/span/error`.
#[derive(Debug, Deserialize)]
pub(crate) struct SetError {
    pub(crate) span_id: Id,
    #[serde(default, rename = "type")]
    pub(crate) error_type: String,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) stack: String,
}

/// `POST /trace/span/extract_headers`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExtractHeaders {
    #[serde(deserialize_with = "pairs")]
    pub(crate) http_headers: Vec<(String, String)>,
}

/// `POST /trace/span/set_baggage`.
#[derive(Debug, Deserialize)]
pub(crate) struct SetBaggage {
    pub(crate) span_id: Id,
    pub(crate) key: String,
    pub(crate) value: String,
}

/// `GET /trace/span/get_baggage` (a GET with a JSON body).
#[derive(Debug, Deserialize)]
pub(crate) struct GetBaggage {
    pub(crate) span_id: Id,
    pub(crate) key: String,
}

/// The answer of `span/start` and `span/current`. The trace id is the full
/// 128 bits: serde_json writes a `u128` as a plain integer.
#[derive(Debug, Serialize)]
pub(crate) struct SpanIds {
    pub(crate) span_id: u64,
    pub(crate) trace_id: u128,
}

/// The answer of `span/extract_headers`: the id to pass as `parent_id`,
/// `null` when the headers held no context.
#[derive(Debug, Serialize)]
pub(crate) struct Extracted {
    pub(crate) span_id: Option<u64>,
}

/// The answer of `span/inject_headers`.
#[derive(Debug, Serialize)]
pub(crate) struct Injected {
    pub(crate) http_headers: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_integers_hex_and_decimal_strings() {
        let id = |json: &str| serde_json::from_str::<Id>(json).map(|id| id.0).ok();
        assert_eq!(id("18446744073709551615"), Some(u64::MAX));
        assert_eq!(id("\"0xff\""), Some(255));
        assert_eq!(id("\"42\""), Some(42));
        assert_eq!(id("-1"), None);
        assert_eq!(id("\"0xzz\""), None);
        assert_eq!(id("null"), None);
    }

    #[test]
    fn start_with_nulls_and_tag_pairs() {
        let start: StartSpan = serde_json::from_str(
            r#"{"name": "op", "service": null, "resource": null, "parent_id": null,
                "type": null, "span_tags": [["k", "v"], ["n", 3], ["gone", null]]}"#,
        )
        .unwrap();
        assert_eq!(start.name, "op");
        assert!(start.parent_id.is_none() && start.service.is_none());
        assert_eq!(
            start.span_tags,
            [("k".into(), "v".into()), ("n".into(), "3".into())]
        );
    }

    #[test]
    fn trace_ids_beyond_64_bits_are_plain_integers() {
        let ids = SpanIds {
            span_id: 1,
            trace_id: u128::MAX,
        };
        assert_eq!(
            serde_json::to_string(&ids).unwrap(),
            format!(r#"{{"span_id":1,"trace_id":{}}}"#, u128::MAX)
        );
    }
}

/// `POST /trace/span/add_link`: `parent_id` names a span started here or
/// an extracted context.
#[derive(Debug, Deserialize)]
pub(crate) struct AddLink {
    pub(crate) span_id: Id,
    pub(crate) parent_id: Id,
    #[serde(default)]
    pub(crate) attributes: serde_json::Map<String, Value>,
}

/// `POST /trace/span/add_event`: `timestamp` in nanoseconds since the
/// epoch (the client's `time_unix_nano`).
#[derive(Debug, Deserialize)]
pub(crate) struct AddEvent {
    pub(crate) span_id: Id,
    pub(crate) name: String,
    pub(crate) timestamp: Option<u64>,
    #[serde(default)]
    pub(crate) attributes: serde_json::Map<String, Value>,
}

/// Attributes as ddspan takes them: strings, booleans, integers that fit
/// 64 bits, floats and arrays of them; anything else (null, objects,
/// integers past 64 bits) is left out.
pub(crate) fn attributes(
    map: serde_json::Map<String, Value>,
) -> Vec<(String, ddspan::AttributeValue)> {
    map.into_iter()
        .filter_map(|(key, value)| attribute(value).map(|value| (key, value)))
        .collect()
}

fn attribute(value: Value) -> Option<ddspan::AttributeValue> {
    use ddspan::AttributeValue;
    match value {
        Value::String(s) => Some(AttributeValue::String(s)),
        Value::Bool(b) => Some(AttributeValue::Bool(b)),
        Value::Number(n) if n.is_f64() => n.as_f64().map(AttributeValue::Double),
        Value::Number(n) => n.as_i64().map(AttributeValue::Int),
        Value::Array(items) => items
            .into_iter()
            .map(attribute)
            .collect::<Option<Vec<_>>>()
            .map(AttributeValue::Array),
        Value::Null | Value::Object(_) => None,
    }
}
