//! Log correlation for `tracing-subscriber`'s fmt layer: an event format
//! that adds the active span's correlation fields to the line its inner
//! format writes, keeping that format.
//!
//! Text lines start with the fields as ddspan writes them everywhere
//! (`dd.service=… dd.trace_id="…" dd.span_id="…"`, see [`LogContext`]).
//! A JSON line (`fmt::layer().json()`) gets them as members of its
//! object, first: `{"dd.service":"…",…,"dd.trace_id":"…","dd.span_id":"…","timestamp":…}`.
//! Which one a line is, is seen in the inner format's output: it is written
//! into a per-thread buffer, and a line that is a JSON object is spliced.
//! A format whose first line was text is not buffered again, so text keeps
//! its colours.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::LogContext;

thread_local! {
    /// The inner format's line, before the fields go in.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A line buffer kept for reuse is at most this big.
const KEPT_LINE_CAPACITY: usize = 16 * 1024;

/// Wraps an event format: every event emitted while a ddspan span is active
/// carries its correlation fields, in front of a text line or as fields of
/// a JSON line's object.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::integrations::tracing::CorrelatedFormat;
///
/// let subscriber = tracing_subscriber::fmt()
///     .event_format(CorrelatedFormat::new(tracing_subscriber::fmt::format()))
///     .finish();
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = ddspan_runtime::tracer::trace("job");
///     tracing::info!("started"); // dd.trace_id="…" dd.span_id="…" INFO started
/// });
///
/// // JSON: {"dd.trace_id":"…","dd.span_id":"…","timestamp":"…","level":"INFO",…}
/// // (`.json()` first: it also formats span fields as JSON, which the JSON
/// // event format needs; then wrap its event format.)
/// let json = tracing_subscriber::fmt().json().map_event_format(CorrelatedFormat::new).finish();
/// ```
#[derive(Debug)]
pub struct CorrelatedFormat<F> {
    inner: F,
    /// Set once a line of the inner format was text: later lines are
    /// written straight to the output, fields first.
    text: AtomicBool,
}

impl<F> CorrelatedFormat<F> {
    /// Wraps `inner` (a text or JSON format). For JSON, wrap the event
    /// format of a fmt layer or subscriber made `.json()` with
    /// `map_event_format`, so that span fields are JSON too (the JSON event
    /// format needs them so).
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::integrations::tracing::CorrelatedFormat;
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let json = tracing_subscriber::fmt::layer().json().map_event_format(CorrelatedFormat::new);
    /// let subscriber = tracing_subscriber::registry().with(json);
    /// # tracing::subscriber::with_default(subscriber, || {
    /// #     let _span = tracing::info_span!("request", id = 7).entered();
    /// #     let _job = ddspan_runtime::tracer::trace("job");
    /// #     tracing::info!("inside");
    /// # });
    /// ```
    pub fn new(inner: F) -> CorrelatedFormat<F> {
        CorrelatedFormat {
            inner,
            text: AtomicBool::new(false),
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for CorrelatedFormat<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(fields) = crate::tracer::log_context() else {
            return self.inner.format_event(ctx, writer, event);
        };
        if self.text.load(Ordering::Relaxed) {
            write!(writer, "{fields} ")?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut format = |line: &mut String| -> fmt::Result {
            line.clear();
            self.inner.format_event(ctx, Writer::new(line), event)?;
            if let Some(members) = json_object_members(line) {
                writer.write_char('{')?;
                write_json_fields(&mut writer, &fields)?;
                if !members.trim_start().starts_with('}') {
                    writer.write_char(',')?;
                }
                return writer.write_str(members);
            }
            self.text.store(true, Ordering::Relaxed);
            write!(writer, "{fields} ")?;
            if writer.has_ansi_escapes() {
                // The buffer was written without colours: once more, in colour.
                self.inner.format_event(ctx, writer.by_ref(), event)
            } else {
                writer.write_str(line)
            }
        };
        let format = &mut format;
        let buffered = LINE.try_with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else {
                return format(&mut String::new()); // an event logged while formatting one
            };
            let result = format(&mut line);
            if line.capacity() > KEPT_LINE_CAPACITY {
                *line = String::new();
            }
            result
        });
        match buffered {
            Ok(result) => result,
            Err(_) => format(&mut String::new()), // thread teardown
        }
    }
}

/// What follows the `{` of a line that is a JSON object (`{"key"…` or
/// `{}`), else `None`.
fn json_object_members(line: &str) -> Option<&str> {
    let members = line.trim_start().strip_prefix('{')?;
    let next = members.trim_start();
    (next.starts_with('"') || next.starts_with('}')).then_some(members)
}

/// The correlation fields as JSON object members, in the order and with the
/// values of the text form (`LogContext`'s `Display`), without a trailing
/// comma.
fn write_json_fields(writer: &mut Writer<'_>, fields: &LogContext) -> fmt::Result {
    for (key, value) in [
        ("dd.service", &fields.service),
        ("dd.env", &fields.env),
        ("dd.version", &fields.version),
    ] {
        if !value.is_empty() {
            write!(writer, "\"{key}\":{},", JsonString(value))?;
        }
    }
    write!(
        writer,
        "\"dd.trace_id\":{},\"dd.span_id\":\"{}\"",
        JsonString(&fields.trace_id_text()),
        fields.span_id
    )
}

/// A string as a JSON string literal.
struct JsonString<'a>(&'a str);

impl fmt::Display for JsonString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self.0) {
            Ok(quoted) => f.write_str(&quoted),
            Err(_) => f.write_str("\"\""), // not reached: a `str` always serializes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_are_told_from_text() {
        assert_eq!(
            json_object_members("{\"a\":1}\n"),
            Some("\"a\":1}\n"),
            "an object"
        );
        assert_eq!(json_object_members("{}\n"), Some("}\n"), "an empty object");
        assert_eq!(json_object_members("{not json\n"), None);
        assert_eq!(json_object_members("2026-11-29T13:00:00Z INFO x\n"), None);
    }

    #[test]
    fn fields_are_valid_json_members() {
        let fields = LogContext {
            service: "svc \"quoted\"".into(),
            env: String::new(),
            version: "1.0".into(),
            trace_id: 0x6b03_41ba_0000_0000_5101_bbdc_3700_58e8,
            span_id: 42,
        };
        let mut out = String::from("{");
        write_json_fields(&mut Writer::new(&mut out), &fields).unwrap();
        out.push('}');
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["dd.service"], "svc \"quoted\"");
        assert_eq!(value["dd.version"], "1.0");
        assert!(value.get("dd.env").is_none(), "empty fields are left out");
        assert_eq!(value["dd.trace_id"], "6b0341ba000000005101bbdc370058e8");
        assert_eq!(value["dd.span_id"], "42");
    }
}
