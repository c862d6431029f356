//! Tag values and their size bounds.

use std::borrow::Cow;

/// The longest tag key kept, in bytes; longer keys are cut at a character
/// boundary. This is the Datadog Agent's own limit for meta keys.
pub const MAX_TAG_KEY_LEN: usize = 200;

/// The longest string tag value kept, in bytes; longer values are cut at a
/// character boundary. This is the Datadog Agent's own limit for meta values,
/// so no tag is ever rejected or cut differently by the agent.
pub const MAX_TAG_VALUE_LEN: usize = 25_000;

/// The most tags one span keeps beyond those known at compile time; later
/// ones are dropped (and counted in [`crate::Stats::tags_dropped`]).
pub(crate) const MAX_TAGS_PER_SPAN: usize = 256;

/// A tag value: strings go to a span's `meta`, numbers and booleans to its
/// `metrics`, as Datadog tracers do.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::TagValue;
///
/// assert_eq!(TagValue::from("GET"), TagValue::Str("GET".into()));
/// assert_eq!(TagValue::from(200u16), TagValue::Number(200.0));
/// assert_eq!(TagValue::from(true), TagValue::Number(1.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum TagValue {
    /// A string, sent in `meta`.
    Str(Cow<'static, str>),
    /// A number, sent in `metrics`.
    Number(f64),
}

impl From<&'static str> for TagValue {
    fn from(value: &'static str) -> Self {
        TagValue::Str(Cow::Borrowed(value))
    }
}

impl From<String> for TagValue {
    fn from(value: String) -> Self {
        TagValue::Str(Cow::Owned(value))
    }
}

impl From<Cow<'static, str>> for TagValue {
    fn from(value: Cow<'static, str>) -> Self {
        TagValue::Str(value)
    }
}

impl From<bool> for TagValue {
    fn from(value: bool) -> Self {
        TagValue::Number(if value { 1.0 } else { 0.0 })
    }
}

macro_rules! number_tag_value {
    ($($ty:ty),*) => {$(
        impl From<$ty> for TagValue {
            #[allow(clippy::cast_precision_loss, clippy::cast_lossless)]
            fn from(value: $ty) -> Self {
                TagValue::Number(value as f64)
            }
        }
    )*};
}
number_tag_value!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64);

/// The one tag whose numbers Datadog's tracers send as strings, in `meta`:
/// the agent computes its trace metrics from `http.status_code` in `meta`
/// (ddtrace's `set_tag` turns the number into a string; dd-trace-go's
/// integrations set it as one). Other numeric tags of Datadog's conventions
/// (`out.port`, `grpc.status.code`, `db.row_count`, ...) stay numbers in
/// ddtrace, and here.
pub(crate) const HTTP_STATUS_CODE: &str = "http.status_code";

/// A number as `meta` text: integers without a fraction (`200`, not
/// `200.0`).
pub(crate) fn number_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        value.to_string()
    }
}

/// The kind of a span, Datadog's `span.kind` tag (OpenTelemetry's span
/// kinds): set with [`SpanBuilder::kind`](crate::SpanBuilder::kind),
/// `#[dd_span(span.kind = "server")]`, or `set_tag("span.kind", kind)`.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{tracer, SpanKind};
///
/// let span = tracer::span("kafka.produce").kind(SpanKind::Producer).start();
/// assert_eq!(SpanKind::Producer.as_str(), "producer");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpanKind {
    /// Handles a request from a remote client (`server`).
    Server,
    /// Sends a request to a remote service (`client`).
    Client,
    /// Sends a message to a broker (`producer`).
    Producer,
    /// Receives a message from a broker (`consumer`).
    Consumer,
    /// Work inside the service (`internal`).
    Internal,
}

impl SpanKind {
    /// The value of the `span.kind` tag: `server`, `client`, `producer`,
    /// `consumer` or `internal`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ddspan_runtime::SpanKind::Server.as_str(), "server");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
            SpanKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for SpanKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<SpanKind> for TagValue {
    fn from(kind: SpanKind) -> Self {
        TagValue::Str(Cow::Borrowed(kind.as_str()))
    }
}

/// A value `#[dd_span(key = expression)]` records as it is: numbers and
/// booleans as numeric tags (`metrics`), strings as string tags (`meta`),
/// `None` as no tag at all. Any other type is recorded through its
/// `Display` (`key = %expression`) or `Debug` (`key = ?expression`), or
/// through an implementation of this trait.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{AsTagValue, TagValue};
///
/// struct UserId(u64);
/// impl AsTagValue for UserId {
///     fn as_tag_value(&self) -> Option<TagValue> {
///         Some(TagValue::from(self.0))
///     }
/// }
/// assert_eq!(UserId(7).as_tag_value(), Some(TagValue::Number(7.0)));
/// assert_eq!("gold".as_tag_value(), Some(TagValue::from("gold")));
/// assert_eq!(None::<u8>.as_tag_value(), None);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tag value as it is",
    label = "not a number, bool or string",
    note = "record it with its Display (`key = %expression`) or its Debug (`key = ?expression`), or implement `AsTagValue` for it"
)]
pub trait AsTagValue {
    /// The tag's value; `None`: no tag.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{AsTagValue, TagValue};
    ///
    /// assert_eq!(3u8.as_tag_value(), Some(TagValue::Number(3.0)));
    /// ```
    fn as_tag_value(&self) -> Option<TagValue>;
}

macro_rules! as_tag_value_by_from {
    ($($ty:ty),*) => {$(
        impl AsTagValue for $ty {
            #[inline]
            fn as_tag_value(&self) -> Option<TagValue> {
                Some(TagValue::from(*self))
            }
        }
    )*};
}
as_tag_value_by_from!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64, bool, SpanKind);

impl AsTagValue for str {
    fn as_tag_value(&self) -> Option<TagValue> {
        Some(TagValue::Str(Cow::Owned(self.to_owned())))
    }
}

impl AsTagValue for String {
    fn as_tag_value(&self) -> Option<TagValue> {
        self.as_str().as_tag_value()
    }
}

impl AsTagValue for Cow<'_, str> {
    fn as_tag_value(&self) -> Option<TagValue> {
        self.as_ref().as_tag_value()
    }
}

impl AsTagValue for TagValue {
    fn as_tag_value(&self) -> Option<TagValue> {
        Some(self.clone())
    }
}

impl<T: AsTagValue> AsTagValue for Option<T> {
    fn as_tag_value(&self) -> Option<TagValue> {
        self.as_ref()?.as_tag_value()
    }
}

impl<T: AsTagValue + ?Sized> AsTagValue for &T {
    #[inline]
    fn as_tag_value(&self) -> Option<TagValue> {
        (**self).as_tag_value()
    }
}

impl<T: AsTagValue + ?Sized> AsTagValue for &mut T {
    fn as_tag_value(&self) -> Option<TagValue> {
        (**self).as_tag_value()
    }
}

impl<T: AsTagValue + ?Sized> AsTagValue for Box<T> {
    fn as_tag_value(&self) -> Option<TagValue> {
        (**self).as_tag_value()
    }
}

impl<T: AsTagValue + ?Sized> AsTagValue for std::sync::Arc<T> {
    fn as_tag_value(&self) -> Option<TagValue> {
        (**self).as_tag_value()
    }
}

impl<T: AsTagValue + ?Sized> AsTagValue for std::rc::Rc<T> {
    fn as_tag_value(&self) -> Option<TagValue> {
        (**self).as_tag_value()
    }
}

/// A tag known at compile time, as `#[dd_span(key = "value")]` writes it.
/// Spans keep a reference to a static slice of these: no copy, no allocation.
///
/// Built only with the `const fn`s [`StaticTag::str`] and
/// [`StaticTag::number`]; read with [`StaticTag::key`] and
/// [`StaticTag::value`].
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{StaticTag, StaticValue};
///
/// static TAGS: [StaticTag; 2] = [
///     StaticTag::str("component", "http"),
///     StaticTag::number("retries", 3.0),
/// ];
/// assert_eq!(TAGS[0].key(), "component");
/// assert_eq!(TAGS[1].value(), StaticValue::Number(3.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StaticTag {
    /// The tag's key.
    pub(crate) key: &'static str,
    /// The tag's value.
    pub(crate) value: StaticValue,
}

/// The value of a [`StaticTag`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StaticValue {
    /// A string, sent in `meta`.
    Str(&'static str),
    /// A number, sent in `metrics`.
    Number(f64),
}

impl StaticTag {
    /// A string tag, sent in `meta`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{StaticTag, StaticValue};
    ///
    /// const TAG: StaticTag = StaticTag::str("db.system", "postgresql");
    /// assert_eq!(TAG.value(), StaticValue::Str("postgresql"));
    /// ```
    pub const fn str(key: &'static str, value: &'static str) -> Self {
        StaticTag {
            key,
            value: StaticValue::Str(value),
        }
    }

    /// A numeric tag, sent in `metrics`. (`#[dd_span(http.status_code =
    /// 200)]` writes that one as a string tag, `"200"`, as Datadog's
    /// tracers send it; a spec built by hand should too.)
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{StaticTag, StaticValue};
    ///
    /// const TAG: StaticTag = StaticTag::number("shard", 4.0);
    /// assert_eq!(TAG.value(), StaticValue::Number(4.0));
    /// ```
    pub const fn number(key: &'static str, value: f64) -> Self {
        StaticTag {
            key,
            value: StaticValue::Number(value),
        }
    }

    /// The tag's key.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ddspan_runtime::StaticTag::str("k", "v").key(), "k");
    /// ```
    pub const fn key(&self) -> &'static str {
        self.key
    }

    /// The tag's value.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{StaticTag, StaticValue};
    ///
    /// assert_eq!(StaticTag::str("k", "v").value(), StaticValue::Str("v"));
    /// ```
    pub const fn value(&self) -> StaticValue {
        self.value
    }
}

/// The longest prefix of `s` that is at most `max` bytes and ends on a
/// character boundary.
pub(crate) fn truncated(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Cuts an owned string in place to the bound; borrowed strings are left as
/// they are (the encoder cuts them on the way out without copying).
pub(crate) fn bound(mut value: Cow<'static, str>, max: usize) -> Cow<'static, str> {
    if let Cow::Owned(s) = &mut value {
        if s.len() > max {
            let end = truncated(s, max).len();
            s.truncate(end);
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncated("héllo", 2), "h");
        assert_eq!(truncated("héllo", 3), "hé");
        assert_eq!(truncated("abc", 10), "abc");
    }

    #[test]
    fn owned_values_are_bounded() {
        let long = "x".repeat(MAX_TAG_VALUE_LEN + 10);
        let bounded = bound(Cow::Owned(long), MAX_TAG_VALUE_LEN);
        assert_eq!(bounded.len(), MAX_TAG_VALUE_LEN);
    }
}
