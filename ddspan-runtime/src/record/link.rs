//! Span links and span events as data: what `add_link` and `add_event`
//! record, checked and bounded when they are added, so that the encoder
//! only writes them (natively in v0.4, as `_dd.span_links` / `events` meta
//! JSON otherwise: `export/encode_links.rs`).
//!
//! The rules are Datadog's (ddtrace's `SpanLink`/`SpanEvent`, the agent's
//! `span.proto`): a link's attributes are strings, arrays flattened to
//! `key.0`, `key.1`, ... and booleans as `true`/`false`; an event's keep
//! their types, arrays must hold scalars of one type (others are dropped).

use crate::record::tag::{bound, number_text, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN};

/// At most this many links a span keeps (OpenTelemetry's default span
/// limit); more are counted in `Stats::tags_dropped`.
pub(crate) const MAX_LINKS: usize = 128;
/// At most this many events a span keeps.
pub(crate) const MAX_EVENTS: usize = 128;
/// At most this many attributes a link or an event keeps.
pub(crate) const MAX_ATTRIBUTES: usize = 128;

/// The value of a span link's or span event's attribute: a string, a
/// boolean, an integer, a float, or an array of one of those.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::AttributeValue;
///
/// let values: [AttributeValue; 4] = ["text".into(), true.into(), 3.into(), vec![1.5, 2.5].into()];
/// assert_eq!(values[2], AttributeValue::Int(3));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AttributeValue {
    /// A string.
    String(String),
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// An array of scalars (events keep it only when every item has the
    /// same type and none is an array).
    Array(Vec<AttributeValue>),
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> AttributeValue {
        AttributeValue::String(value.to_owned())
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> AttributeValue {
        AttributeValue::String(value)
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> AttributeValue {
        AttributeValue::Bool(value)
    }
}

macro_rules! int_attribute {
    ($($ty:ty),*) => {$(
        impl From<$ty> for AttributeValue {
            fn from(value: $ty) -> AttributeValue {
                AttributeValue::Int(i64::from(value))
            }
        }
    )*};
}
int_attribute!(i8, i16, i32, i64, u8, u16, u32);

impl From<f64> for AttributeValue {
    fn from(value: f64) -> AttributeValue {
        AttributeValue::Double(value)
    }
}

impl From<f32> for AttributeValue {
    fn from(value: f32) -> AttributeValue {
        AttributeValue::Double(f64::from(value))
    }
}

impl<T: Into<AttributeValue>> From<Vec<T>> for AttributeValue {
    fn from(values: Vec<T>) -> AttributeValue {
        AttributeValue::Array(values.into_iter().map(Into::into).collect())
    }
}

impl AttributeValue {
    /// The type number of Datadog's native form (0 string, 1 bool, 2 int,
    /// 3 double, 4 array).
    pub(crate) fn type_number(&self) -> u8 {
        match self {
            AttributeValue::String(_) => 0,
            AttributeValue::Bool(_) => 1,
            AttributeValue::Int(_) => 2,
            AttributeValue::Double(_) => 3,
            AttributeValue::Array(_) => 4,
        }
    }

    /// As a link attribute (and in the meta forms) writes a scalar.
    fn text(&self) -> String {
        match self {
            AttributeValue::String(s) => s.clone(),
            AttributeValue::Bool(b) => b.to_string(),
            AttributeValue::Int(i) => i.to_string(),
            AttributeValue::Double(d) => number_text(*d),
            AttributeValue::Array(_) => String::new(),
        }
    }

    /// Its strings cut to the tag limit.
    fn bounded(self) -> AttributeValue {
        match self {
            AttributeValue::String(s) => AttributeValue::String(bounded(s, MAX_TAG_VALUE_LEN)),
            AttributeValue::Array(items) => {
                AttributeValue::Array(items.into_iter().map(AttributeValue::bounded).collect())
            }
            other => other,
        }
    }

    /// Whether an event may carry it: a scalar, or an array of scalars of
    /// one type.
    fn valid_for_event(&self) -> bool {
        match self {
            AttributeValue::Array(items) => items.iter().all(|item| {
                !matches!(item, AttributeValue::Array(_))
                    && item.type_number() == items[0].type_number()
            }),
            _ => true,
        }
    }
}

fn bounded(text: String, max: usize) -> String {
    bound(text.into(), max).into_owned()
}

/// A link from a span to another span's context.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Link {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    /// The linked context's W3C `tracestate`.
    pub(crate) tracestate: Option<String>,
    /// W3C trace flags (1 sampled, 0 not), when the context's sampling
    /// decision is known; the encoders add the "set" bit (bit 31).
    pub(crate) flags: Option<u32>,
    /// Flattened: string values.
    pub(crate) attributes: Vec<(String, String)>,
}

/// The "flags are set" bit of a link's `flags` on the wire.
pub(crate) const FLAGS_SET: u32 = 1 << 31;

impl Link {
    /// Adds attributes, flattened as Datadog's tracers do; returns how
    /// many did not fit under [`MAX_ATTRIBUTES`].
    pub(crate) fn with_attributes<'a>(
        &mut self,
        attributes: impl IntoIterator<Item = (&'a str, AttributeValue)>,
    ) -> u32 {
        let mut dropped = 0;
        for (key, value) in attributes {
            flatten(
                bounded(key.to_owned(), MAX_TAG_KEY_LEN),
                &value,
                &mut self.attributes,
                &mut dropped,
            );
        }
        dropped
    }
}

fn flatten(
    key: String,
    value: &AttributeValue,
    out: &mut Vec<(String, String)>,
    dropped: &mut u32,
) {
    match value {
        AttributeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(format!("{key}.{i}"), item, out, dropped);
            }
        }
        scalar => {
            out.retain(|(k, _)| *k != key);
            if out.len() >= MAX_ATTRIBUTES {
                *dropped += 1;
            } else {
                out.push((key, bounded(scalar.text(), MAX_TAG_VALUE_LEN)));
            }
        }
    }
}

/// Something that happened during a span, at a time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) time_unix_nano: u64,
    pub(crate) attributes: Vec<(String, AttributeValue)>,
}

impl Event {
    /// An event with checked attributes (invalid and surplus ones left
    /// out) and how many were left out.
    pub(crate) fn new<'a>(
        name: &str,
        time_unix_nano: u64,
        attributes: impl IntoIterator<Item = (&'a str, AttributeValue)>,
    ) -> (Event, u32) {
        let mut kept: Vec<(String, AttributeValue)> = Vec::new();
        let mut dropped = 0;
        for (key, value) in attributes {
            let key = bounded(key.to_owned(), MAX_TAG_KEY_LEN);
            kept.retain(|(k, _)| *k != key);
            if !value.valid_for_event() || kept.len() >= MAX_ATTRIBUTES {
                dropped += 1;
                continue;
            }
            kept.push((key, value.bounded()));
        }
        let event = Event {
            name: bounded(name.to_owned(), MAX_TAG_VALUE_LEN),
            time_unix_nano,
            attributes: kept,
        };
        (event, dropped)
    }
}

/// A span's links and events, boxed apart from its other run-time data:
/// most spans have none.
#[derive(Debug, Default)]
pub(crate) struct LinksAndEvents {
    pub(crate) links: Vec<Link>,
    pub(crate) events: Vec<Event>,
}

impl LinksAndEvents {
    /// Keeps `link` under the bound; `false` when it did not fit.
    pub(crate) fn add_link(&mut self, link: Link) -> bool {
        if self.links.len() >= MAX_LINKS {
            return false;
        }
        self.links.push(link);
        true
    }

    /// Keeps `event` under the bound; `false` when it did not fit.
    pub(crate) fn add_event(&mut self, event: Event) -> bool {
        if self.events.len() >= MAX_EVENTS {
            return false;
        }
        self.events.push(event);
        true
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let link: usize = self
            .links
            .iter()
            .map(|l| {
                std::mem::size_of::<Link>()
                    + l.tracestate.as_ref().map_or(0, String::capacity)
                    + l.attributes
                        .iter()
                        .map(|(k, v)| k.capacity() + v.capacity() + 48)
                        .sum::<usize>()
            })
            .sum();
        let event: usize = self
            .events
            .iter()
            .map(|e| std::mem::size_of::<Event>() + e.name.capacity() + e.attributes.len() * 64)
            .sum();
        std::mem::size_of::<LinksAndEvents>() + link + event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link {
            trace_id: 1,
            span_id: 2,
            tracestate: None,
            flags: None,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn link_attributes_are_flattened_strings() {
        let mut link = link();
        let dropped = link.with_attributes([
            ("foo", "bar".into()),
            ("array", vec!["a", "b"].into()),
            ("bools", vec![true, false].into()),
            ("n", 2.into()),
            ("x", 2.5.into()),
            ("nested", AttributeValue::Array(vec![vec![1, 2].into()])),
        ]);
        assert_eq!(dropped, 0);
        let got: Vec<(&str, &str)> = link
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("foo", "bar"),
                ("array.0", "a"),
                ("array.1", "b"),
                ("bools.0", "true"),
                ("bools.1", "false"),
                ("n", "2"),
                ("x", "2.5"),
                ("nested.0.0", "1"),
                ("nested.0.1", "2"),
            ]
        );
    }

    #[test]
    fn attributes_are_bounded() {
        let mut link = link();
        let many: Vec<(String, AttributeValue)> = (0..MAX_ATTRIBUTES + 3)
            .map(|i| (format!("k{i}"), AttributeValue::Int(i as i64)))
            .collect();
        let dropped = link.with_attributes(many.iter().map(|(k, v)| (k.as_str(), v.clone())));
        assert_eq!((link.attributes.len(), dropped), (MAX_ATTRIBUTES, 3));
        let (event, dropped) = Event::new(
            "e",
            1,
            [(
                "long",
                AttributeValue::from("x".repeat(MAX_TAG_VALUE_LEN + 5)),
            )],
        );
        assert_eq!(dropped, 0);
        assert_eq!(
            event.attributes[0].1,
            AttributeValue::String("x".repeat(MAX_TAG_VALUE_LEN))
        );
        let mut both = LinksAndEvents::default();
        for _ in 0..MAX_LINKS {
            assert!(both.add_link(link.clone()));
        }
        assert!(!both.add_link(link));
    }

    #[test]
    fn invalid_event_attributes_are_left_out() {
        let (event, dropped) = Event::new(
            "name",
            7,
            [
                ("int", 1.into()),
                ("mixed", AttributeValue::Array(vec![1.into(), "a".into()])),
                ("nested", AttributeValue::Array(vec![vec![1].into()])),
                ("string", "bar".into()),
                ("empty", AttributeValue::Array(Vec::new())),
            ],
        );
        assert_eq!(dropped, 2);
        let keys: Vec<&str> = event.attributes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["int", "string", "empty"]);
    }
}
