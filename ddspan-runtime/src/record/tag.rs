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

    /// A numeric tag, sent in `metrics`.
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
