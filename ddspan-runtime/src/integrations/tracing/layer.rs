//! The bridge: `tracing` spans recorded as Datadog spans, in the same
//! traces as ddspan's.
//!
//! One rule makes the two worlds nest: a bridged span, while entered, is on
//! this thread's ddspan stack like an entered [`Span`], so ddspan's active
//! span is always the innermost of both. Then
//! - a `tracing` span's parent is its explicit parent when it names one
//!   (`parent: &span`), none when it says `parent: None`, and else the
//!   active ddspan span (which may be a bridged `tracing` span, a
//!   `#[dd_span]` function or a [`Span`] entered by hand);
//! - a `#[dd_span]` function, `tracer::trace` or a `SpanBuilder` started
//!   while a bridged span is entered is its child, as under any entered
//!   [`Span`];
//! - `.instrument(span)` futures enter their span on whichever thread polls
//!   them, so both rules hold across thread hops.
//!
//! A span a filter leaves out is never seen here: its children attach to
//! the nearest span that is (the active one).

use std::borrow::Cow;
use std::cell::RefCell;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::fields::{EventError, Fields};
use crate::context::stack::{self, FrameRef};
use crate::span::handle::SpanHandle;
use crate::{tracer, Span};

thread_local! {
    /// The bridged spans entered on this thread, innermost last: the
    /// `tracing` id and the frame it has on ddspan's stack.
    static ENTERED: RefCell<Vec<(u64, FrameRef)>> = const { RefCell::new(Vec::new()) };
}

/// A `tracing-subscriber` layer that records `tracing` spans as Datadog
/// spans, in the same traces as ddspan's spans (see the
/// [module](super) and README's "`tracing` and logs").
///
/// - **Names:** the operation name is the span's name, the resource the
///   operation name, the service the parent's (else the tracer's); fields
///   override them: `otel.name`/`dd.name`, `dd.resource`, `dd.service`,
///   `dd.type`, and `otel.kind`/`span.kind` set `span.kind`.
/// - **Tags:** other fields become tags (integers, floats and booleans in
///   `metrics`, strings, `%` and `?` values in `meta`), also when recorded
///   later with `Span::record`.
/// - **Errors:** an `error` field, `otel.status_code = "ERROR"`, or an
///   `ERROR` event with an `error` field inside the span (what
///   `#[instrument(err)]` logs) marks the span, with `error.message`.
/// - **Filters:** use `tracing-subscriber`'s, global or per layer
///   (`DatadogLayer::new().with_filter(..)`).
///
/// Nothing is recorded while no tracer runs (before `tracer::start`, after
/// `tracer::stop`).
///
/// # Examples
///
/// ```
/// use ddspan_runtime::integrations::tracing::DatadogLayer;
/// use tracing_subscriber::filter::LevelFilter;
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::Layer;
///
/// #[tracing::instrument(fields(dd.resource = "GET /users/:id", user.id = id))]
/// fn get_user(id: u64) {
///     let _query = ddspan_runtime::tracer::trace("db.query"); // a child of get_user
/// }
///
/// let subscriber =
///     tracing_subscriber::registry().with(DatadogLayer::new().with_filter(LevelFilter::INFO));
/// tracing::subscriber::with_default(subscriber, || get_user(42));
/// ```
#[derive(Clone, Debug, Default)]
pub struct DatadogLayer {
    _private: (),
}

impl DatadogLayer {
    /// The layer. Add it to a `tracing_subscriber::registry()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::integrations::tracing::DatadogLayer;
    /// use tracing_subscriber::layer::SubscriberExt;
    /// use tracing_subscriber::util::SubscriberInitExt;
    ///
    /// tracing_subscriber::registry()
    ///     .with(DatadogLayer::new())
    ///     .with(tracing_subscriber::fmt::layer())
    ///     .init();
    /// ```
    pub fn new() -> DatadogLayer {
        DatadogLayer { _private: () }
    }
}

/// The Datadog span of a `tracing` span, kept in its extensions.
struct Bridged(Span);

/// Runs `f` on the Datadog span of the `tracing` span `id`, if it has one.
/// The registry's lock on the span's extensions is held meanwhile, so `f`
/// runs no user code (values are formatted before).
fn with_bridged<S, R>(id: &Id, ctx: &Context<'_, S>, f: impl FnOnce(&Span) -> R) -> Option<R>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = ctx.span(id)?;
    let extensions = span.extensions();
    extensions.get::<Bridged>().map(|bridged| f(&bridged.0))
}

impl<S> Layer<S> for DatadogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !crate::runtime::registry::is_running() {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let name = fields
            .name
            .take()
            .unwrap_or(Cow::Borrowed(attrs.metadata().name()));
        let mut builder = tracer::span(name);
        if attrs.is_root() {
            builder = builder.child_of(None::<crate::SpanContext>);
        } else if let Some(parent) = attrs.parent() {
            // A parent this layer left out (a per-layer filter) or that
            // records nothing: the active span, as for a contextual parent.
            if let Some(context) = with_bridged(parent, &ctx, Span::context).flatten() {
                builder = builder.child_of(context);
            }
        }
        if let Some(service) = fields.service.take() {
            builder = builder.service(service);
        }
        if let Some(resource) = fields.resource.take() {
            builder = builder.resource(resource);
        }
        if let Some(span_type) = fields.span_type.take() {
            builder = builder.span_type(span_type);
        }
        let span = builder.start();
        if !span.is_recording() {
            return;
        }
        if !fields.is_empty() {
            span.handle_record(|record| fields.apply(record));
        }
        if let Some(tracing_span) = ctx.span(id) {
            // `replace`, not `insert` (which panics on a second value): a
            // subscriber given two `DatadogLayer`s keeps the last span, and
            // the first finishes here.
            drop(tracing_span.extensions_mut().replace(Bridged(span)));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if !fields.is_empty() {
            with_bridged(id, &ctx, |span| {
                span.handle_record(|record| fields.apply(record));
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        let mut error = EventError::default();
        event.record(&mut error);
        let Some(message) = error.0 else {
            return;
        };
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let fields = Fields::error(message);
        let extensions = span.extensions();
        if let Some(bridged) = extensions.get::<Bridged>() {
            bridged.0.handle_record(|record| fields.apply(record));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(frame) = with_bridged(id, &ctx, Span::enter_frame) else {
            return;
        };
        if frame.span_id == 0 {
            return;
        }
        let kept = ENTERED
            .try_with(|entered| {
                entered
                    .try_borrow_mut()
                    .map(|mut entered| entered.push((id.into_u64(), frame)))
                    .is_ok()
            })
            .unwrap_or(false);
        if !kept {
            // Thread teardown or re-entered: leave the span again at once
            // rather than strand it on the stack.
            stack::exit(frame);
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        let id = id.into_u64();
        let frame = ENTERED
            .try_with(|entered| {
                let mut entered = entered.try_borrow_mut().ok()?;
                // Nearly always the last; out of order, found from the end.
                let position = entered.iter().rposition(|(entered, _)| *entered == id)?;
                Some(entered.remove(position).1)
            })
            .ok()
            .flatten();
        if let Some(frame) = frame {
            stack::exit(frame);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        // A span closed while still entered on this thread (its guard was
        // leaked): its frames leave the stack, so that a later span with a
        // reused id is not confused with it.
        let id_bits = id.into_u64();
        let stale: Vec<FrameRef> = ENTERED
            .try_with(|entered| {
                let Ok(mut entered) = entered.try_borrow_mut() else {
                    return Vec::new();
                };
                if !entered.iter().any(|(entered, _)| *entered == id_bits) {
                    return Vec::new();
                }
                let mut stale = Vec::new();
                entered.retain(|(entered, frame)| {
                    let keep = *entered != id_bits;
                    if !keep {
                        stale.push(*frame);
                    }
                    keep
                });
                stale
            })
            .unwrap_or_default();
        for frame in stale.into_iter().rev() {
            stack::exit(frame);
        }
        let Some(tracing_span) = ctx.span(&id) else {
            return;
        };
        let bridged = tracing_span.extensions_mut().remove::<Bridged>();
        if let Some(Bridged(span)) = bridged {
            span.finish();
        }
    }
}
