//! The methods every handle on a running span shares: [`crate::Span`],
//! [`crate::EnteredSpan`],
//! [`crate::SpanRef`] and [`crate::LocalSpanGuard`] have the same setters
//! and getters, with the same signatures and documentation, because they
//! are written once, here.
//!
//! They are inherent methods, not a trait a user must import: a span found
//! with `tracer::current_span()` or made by `#[dd_span]` is tagged the same
//! way with no `use` line (as `tracing` and `fastrace` spans are). Each
//! type only says how it reaches its span ([`SpanHandle`]); the
//! `span_methods!` macro writes the public methods on top of that.

use std::sync::Arc;

use crate::context::SpanContext;
use crate::record::SpanRecord;
use crate::trace::TraceShared;

/// How a handle reaches the span it stands for.
pub(crate) trait SpanHandle {
    /// Whether the handle stands for a span that records.
    fn handle_is_recording(&self) -> bool;

    /// The span's id, 0 when it records nothing.
    fn handle_span_id(&self) -> u64;

    /// Runs `f` on the span's record, if it is still open.
    fn handle_record(&self, f: impl FnOnce(&mut SpanRecord));

    /// The span's context.
    fn handle_context(&self) -> Option<SpanContext>;

    /// The span's trace, shared (for baggage, which belongs to the trace).
    fn handle_trace(&self) -> Option<Arc<TraceShared>>;
}

/// Writes the shared methods on a [`SpanHandle`]; `$setup` is the doctest
/// code that binds `span` to a value of the type.
macro_rules! span_methods {
    ($ty:ty, $setup:literal) => {
        impl $ty {
            /// Whether this span records anything: `false` when tracing is
            /// off or no tracer runs. Every setter is then a no-op, so an
            /// expensive tag can be skipped.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// if span.is_recording() {
            ///     span.set_tag("payload.bytes", 1024);
            /// }
            /// ```
            #[inline]
            pub fn is_recording(&self) -> bool {
                $crate::span::handle::SpanHandle::handle_is_recording(self)
            }

            /// The span's id, 0 when it records nothing.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// let id = span.span_id();
            /// assert_eq!(span.context().map_or(0, |c| c.span_id()), id);
            /// ```
            pub fn span_id(&self) -> u64 {
                $crate::span::handle::SpanHandle::handle_span_id(self)
            }

            /// Sets a tag: strings go to `meta`; integers, floats and
            /// booleans to `metrics`. Setting a key again replaces its value.
            /// `manual.keep` and `manual.drop` (any value but `false`) are
            /// [`keep_trace`](Self::keep_trace) and
            /// [`drop_trace`](Self::drop_trace), as in dd-trace-go and
            /// ddtrace, and are not sent as tags.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// span.set_tag("http.method", "GET");
            /// span.set_tag("http.status_code", 200);
            /// span.set_tag("cache.hit", true);
            /// ```
            pub fn set_tag(
                &self,
                key: impl Into<::std::borrow::Cow<'static, str>>,
                value: impl Into<$crate::TagValue>,
            ) {
                $crate::span::handle::set_tag(self, key.into(), value.into());
            }

            /// Sets the resource (the operation name by default).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// span.set_resource("GET /users/:id");
            /// ```
            pub fn set_resource(&self, resource: impl Into<::std::borrow::Cow<'static, str>>) {
                $crate::span::handle::SpanHandle::handle_record(self, |record| {
                    record.set_resource(resource.into())
                });
            }

            /// Marks the span as an error: `error.message`, `error.type` and
            /// the `source()` chain as `error.stack`, the fields `#[dd_span]`
            /// sets for a returned `Err`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// span.set_error(&std::io::Error::other("disk full"));
            /// ```
            pub fn set_error<E: ::std::error::Error + ?Sized>(&self, error: &E) {
                if self.is_recording() {
                    self.record_error($crate::ErrorFields::from_error(error));
                }
            }

            /// Marks the span as an error with these fields (what a returned
            /// `Err` records).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// use ddspan_runtime::ErrorFields;
            ///
            /// span.record_error(ErrorFields::new("no reply in 5 s", "Timeout"));
            /// ```
            #[inline]
            pub fn record_error(&self, error: $crate::ErrorFields) {
                $crate::span::handle::SpanHandle::handle_record(self, |record| error.apply(record));
            }

            /// Marks or unmarks the span as an error, leaving its error tags
            /// as they are (Python's `span.error = 1`).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// span.set_error_flag(true);
            /// ```
            pub fn set_error_flag(&self, error: bool) {
                $crate::span::handle::SpanHandle::handle_record(self, |record| {
                    record.error = error
                });
            }

            /// Keeps the span's whole trace, whatever sampling decided
            /// (priority 2, `_dd.p.dm` `-4`): its chunks are kept, and
            /// headers injected from now on carry the decision downstream.
            /// dd-trace-go's `ext.ManualKeep` tag, ddtrace's `manual.keep`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// span.keep_trace();
            /// ```
            pub fn keep_trace(&self) {
                $crate::span::handle::set_manual(self, true);
            }

            /// Drops the span's whole trace, whatever sampling decided
            /// (priority -1, `_dd.p.dm` `-4`); headers injected from now on
            /// carry the decision downstream. dd-trace-go's
            /// `ext.ManualDrop` tag, ddtrace's `manual.drop`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// span.drop_trace();
            /// ```
            pub fn drop_trace(&self) {
                $crate::span::handle::set_manual(self, false);
            }

            /// Sets a W3C baggage item on the span's trace: it travels to
            /// downstream services with the `baggage` style, as in
            /// dd-trace-go's `SetBaggageItem`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// span.set_baggage_item("user.id", "42");
            /// if span.is_recording() {
            ///     assert_eq!(span.baggage_item("user.id").as_deref(), Some("42"));
            /// }
            /// ```
            pub fn set_baggage_item(&self, key: impl Into<String>, value: impl Into<String>) {
                if let Some(trace) = $crate::span::handle::SpanHandle::handle_trace(self) {
                    trace.set_baggage(key.into(), value.into());
                }
            }

            /// A baggage item of the span's trace: received from upstream or
            /// set with [`set_baggage_item`](Self::set_baggage_item).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// assert_eq!(span.baggage_item("not.set"), None);
            /// ```
            pub fn baggage_item(&self, key: &str) -> Option<String> {
                let context = self.context()?;
                context
                    .baggage()
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            }

            /// The span's context, to parent spans on other threads or, with
            /// [`tracer::inject`](crate::tracer::inject), in other services.
            /// `None` when the span records nothing.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// let context = span.context();
            /// std::thread::spawn(move || {
            ///     let _child = ddspan_runtime::tracer::span("child").child_of(context).start();
            /// })
            /// .join()
            /// .unwrap();
            /// ```
            pub fn context(&self) -> Option<$crate::SpanContext> {
                $crate::span::handle::SpanHandle::handle_context(self)
            }

            /// Links this span to another span's context (a span of
            /// another trace it follows from, a batch's messages, ...):
            /// Datadog's span links. The link carries the context's ids,
            /// W3C `tracestate` and sampled flag, and `attributes`
            /// (strings, numbers, booleans, arrays of them: flattened to
            /// `key.0`, `key.1`, ... as Datadog's tracers send them). A span
            /// keeps at most 128 links of 128 attributes each; more are
            /// counted in [`Stats::tags_dropped`](crate::Stats::tags_dropped).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// let producer = ddspan_runtime::tracer::start_span("enqueue");
            /// if let Some(context) = producer.context() {
            ///     span.add_link(&context, &[("messaging.operation", "receive".into())]);
            ///     span.add_link(&context, &[]);
            /// }
            /// ```
            pub fn add_link(
                &self,
                context: &$crate::SpanContext,
                attributes: &[(&str, $crate::AttributeValue)],
            ) {
                if !self.is_recording() {
                    return;
                }
                if let Some(mut link) = $crate::propagation::link_to(context) {
                    let dropped =
                        link.with_attributes(attributes.iter().map(|(k, v)| (*k, v.clone())));
                    $crate::span::handle::SpanHandle::handle_record(self, |record| {
                        record.add_link(link, dropped)
                    });
                }
            }

            /// Records an event that happened during the span, now, with
            /// typed attributes (strings, numbers, booleans, arrays of one
            /// of those; an array of mixed types or of arrays is left out):
            /// Datadog's span events, sent natively to an agent that says
            /// it takes them, else as the span's `events` tag. A span
            /// keeps at most 128 events of 128 attributes each.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// span.add_event("cache.miss", &[("key", "user:42".into()), ("attempt", 2.into())]);
            /// ```
            pub fn add_event(&self, name: &str, attributes: &[(&str, $crate::AttributeValue)]) {
                self.add_event_at(name, ::std::time::SystemTime::now(), attributes);
            }

            /// [`add_event`](Self::add_event) at an explicit time.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// let at = std::time::SystemTime::now() - std::time::Duration::from_millis(5);
            /// span.add_event_at("retry", at, &[]);
            /// ```
            pub fn add_event_at(
                &self,
                name: &str,
                time: ::std::time::SystemTime,
                attributes: &[(&str, $crate::AttributeValue)],
            ) {
                if !self.is_recording() {
                    return;
                }
                let (event, dropped) = $crate::record::link::Event::new(
                    name,
                    $crate::util::clock::system_time_nanos(time),
                    attributes.iter().map(|(k, v)| (*k, v.clone())),
                );
                $crate::span::handle::SpanHandle::handle_record(self, |record| {
                    record.add_event(event, dropped)
                });
            }

            /// The span's log correlation fields (`dd.trace_id`, ...; see
            /// [`LogContext`](crate::LogContext)), as
            /// [`tracer::log_context`](crate::tracer::log_context) gives
            /// them for the active span.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = $setup]
            /// if let Some(fields) = span.log_context() {
            ///     println!("working {fields}");
            /// }
            /// ```
            pub fn log_context(&self) -> Option<$crate::LogContext> {
                self.context()
                    .map(|context| $crate::LogContext::of(&context))
            }
        }
    };
}

pub(crate) use span_methods;

/// `set_tag` of every handle: the manual sampling tags decide, the rest
/// are tags.
pub(crate) fn set_tag(
    handle: &impl SpanHandle,
    key: std::borrow::Cow<'static, str>,
    value: crate::TagValue,
) {
    match manual_sampling_tag(&key, &value) {
        Some(Some(keep)) => set_manual(handle, keep),
        Some(None) => {}
        None => handle.handle_record(|record| record.set_tag(key, value)),
    }
}

/// `manual.keep` / `manual.drop`: `Some(Some(keep))`; with the value
/// `false` (or 0) `Some(None)`: no tag, no decision; `None` for any other
/// tag.
fn manual_sampling_tag(key: &str, value: &crate::TagValue) -> Option<Option<bool>> {
    let keep = match key {
        "manual.keep" => true,
        "manual.drop" => false,
        _ => return None,
    };
    let asks = match value {
        crate::TagValue::Number(n) => *n != 0.0,
        crate::TagValue::Str(s) => !s.eq_ignore_ascii_case("false"),
    };
    Some(asks.then_some(keep))
}

/// A user's keep or drop of a handle's trace.
pub(crate) fn set_manual(handle: &impl SpanHandle, keep: bool) {
    if let Some(trace) = handle.handle_trace() {
        trace.set_manual(keep);
    }
}
