//! Distributed tracing: a span's context written into outgoing headers and
//! read from incoming ones, in Datadog's styles and interoperable with
//! Datadog's other tracers. The styles and their rules are described on
//! [`Propagator`]; its types are public at the crate root, the entry points
//! most code needs are `tracer::inject` and `tracer::extract`.

mod baggage;
mod carrier;
mod datadog;
#[cfg(feature = "__fuzz")]
mod fuzz;
mod tracecontext;

use std::fmt;
use std::sync::Arc;

pub use carrier::{Extractor, HeaderError, Injector};
#[cfg(feature = "__fuzz")]
#[doc(hidden)]
pub use fuzz::check_extract;

use crate::context::SpanContext;
use crate::record::link::{AttributeValue, Link};
use crate::record::Upstream;

pub(crate) use crate::config::Style;

/// Why no context could be extracted. `#[non_exhaustive]`: a `match` needs
/// a `_` arm, as new reasons may come.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{tracer, ExtractError};
///
/// let headers = vec![("x-datadog-trace-id".to_owned(), "not a number".to_owned()),
///                    ("x-datadog-parent-id".to_owned(), "1".to_owned())];
/// match tracer::extract(&headers) {
///     Ok(_) => {}
///     Err(ExtractError::NotFound) => println!("a new trace"),
///     Err(error) => println!("bad propagation headers: {error}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractError {
    /// None of the configured styles' headers are present.
    NotFound,
    /// A header is present but malformed.
    Invalid {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A header appears more than once.
    Duplicate {
        /// The header.
        header: &'static str,
    },
    /// A header's value is not text.
    NotUtf8 {
        /// The header.
        header: &'static str,
    },
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtractError::NotFound => f.write_str("no trace context in the headers"),
            ExtractError::Invalid { header, reason } => write!(f, "invalid {header}: {reason}"),
            ExtractError::Duplicate { header } => write!(f, "{header} appears more than once"),
            ExtractError::NotUtf8 { header } => write!(f, "{header} is not text"),
        }
    }
}

impl std::error::Error for ExtractError {}

/// Reads one header for a style, turning carrier errors into extract errors.
/// The most of a header's value an error or a log line quotes: a 1 MB
/// header must not make a 1 MB message per request.
const QUOTED_MAX: usize = 64;

/// `value` as errors quote it: `{:?}`, cut to [`QUOTED_MAX`] bytes.
pub(crate) fn quoted(value: &str) -> String {
    let cut = crate::record::tag::truncated(value, QUOTED_MAX);
    if cut.len() < value.len() {
        format!("{cut:?}... ({} bytes)", value.len())
    } else {
        format!("{value:?}")
    }
}

/// Whether `value` has characters no header value may carry on: CR, LF and
/// the other control characters (tab aside). Taken from one request and
/// injected into the next, they would let the caller add headers of its
/// own downstream.
pub(crate) fn has_control(value: &str) -> bool {
    value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

pub(crate) fn header<'a, E: Extractor + ?Sized>(
    carrier: &'a E,
    name: &'static str,
) -> Result<Option<&'a str>, ExtractError> {
    match carrier.get(name) {
        Ok(value) => Ok(value.map(str::trim)),
        Err(HeaderError::Duplicate) => Err(ExtractError::Duplicate { header: name }),
        Err(HeaderError::NotUtf8) => Err(ExtractError::NotUtf8 { header: name }),
    }
}

/// A header whose fields form one comma-separated list (`tracestate`,
/// `baggage`): every field of it, joined with `,` as HTTP allows a list to
/// be split across fields; `None` when it is absent.
pub(crate) fn header_list<E: Extractor + ?Sized>(
    carrier: &E,
    name: &'static str,
) -> Result<Option<String>, ExtractError> {
    match carrier.get_all(name) {
        Ok(values) if values.is_empty() => Ok(None),
        Ok(values) => Ok(Some(
            values
                .iter()
                .map(|v| v.trim())
                .collect::<Vec<_>>()
                .join(","),
        )),
        Err(HeaderError::Duplicate) => Err(ExtractError::Duplicate { header: name }),
        Err(HeaderError::NotUtf8) => Err(ExtractError::NotUtf8 { header: name }),
    }
}

/// A context as one style read it, before the styles are reconciled.
#[derive(Clone, Debug, Default)]
pub(crate) struct Extracted {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) sampling_priority: Option<i8>,
    pub(crate) upstream: Upstream,
    /// tracecontext: the `p:` member of `dd=`, the last Datadog parent.
    pub(crate) last_parent_id: Option<String>,
}

/// Injects and extracts a [`SpanContext`] with given styles;
/// [`tracer::inject`](crate::tracer::inject) and
/// [`tracer::extract`](crate::tracer::extract) use the running tracer's.
///
/// | style | headers |
/// |---|---|
/// | `datadog` | `x-datadog-trace-id`, `x-datadog-parent-id`, `x-datadog-sampling-priority`, `x-datadog-origin`, `x-datadog-tags` |
/// | `tracecontext` | `traceparent`, `tracestate` (with the `dd=` member) |
/// | `baggage` | `baggage` (W3C) |
///
/// The default for both directions is `datadog,tracecontext,baggage`, as in
/// ddtrace 4; `DD_TRACE_PROPAGATION_STYLE`, `DD_TRACE_PROPAGATION_STYLE_INJECT`
/// and `DD_TRACE_PROPAGATION_STYLE_EXTRACT` change it. On extraction the
/// first style that yields a context wins; when `tracecontext` carries the
/// same trace id, its parent id is used and the Datadog one is kept in
/// `_dd.parent_id`, as ddtrace does.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use ddspan_runtime::{Propagator, SpanContext, Style};
///
/// let w3c = Propagator::new(&[Style::TraceContext]);
/// let context = SpanContext::remote(0xabc, 0xdef, Some(1)).unwrap();
/// let mut headers: HashMap<String, String> = HashMap::new();
/// w3c.inject(&context, &mut headers);
/// assert!(headers.contains_key("traceparent"));
/// assert_eq!(w3c.extract(&headers).unwrap().span_id(), 0xdef);
/// ```
#[derive(Clone, Debug)]
pub struct Propagator {
    inject: Vec<Style>,
    extract: Vec<Style>,
    max_tags_len: usize,
}

impl Default for Propagator {
    fn default() -> Propagator {
        Propagator {
            inject: Style::defaults(),
            extract: Style::defaults(),
            max_tags_len: 512,
        }
    }
}

impl Propagator {
    /// A propagator with these styles for both directions.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{Propagator, Style};
    ///
    /// let datadog_only = Propagator::new(&[Style::Datadog]);
    /// ```
    pub fn new(styles: &[Style]) -> Propagator {
        Propagator {
            inject: styles.to_vec(),
            extract: styles.to_vec(),
            ..Propagator::default()
        }
    }

    /// The running tracer's propagation settings (the defaults when none runs).
    ///
    /// # Examples
    ///
    /// ```
    /// let propagator = ddspan_runtime::Propagator::from_tracer();
    /// ```
    pub fn from_tracer() -> Propagator {
        crate::runtime::registry::current_config()
            .map(|core| Propagator {
                inject: core.config.propagation_inject.clone(),
                extract: core.config.propagation_extract.clone(),
                max_tags_len: core.config.x_datadog_tags_max_length,
            })
            .unwrap_or_default()
    }

    /// Writes `context` into `carrier` in every inject style.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{Propagator, SpanContext, Style};
    ///
    /// let context = SpanContext::remote(0xabc, 0xdef, Some(1)).unwrap();
    /// let mut headers: Vec<(String, String)> = Vec::new();
    /// Propagator::new(&[Style::Datadog]).inject(&context, &mut headers);
    /// assert!(headers.contains(&("x-datadog-parent-id".to_owned(), 0xdef.to_string())));
    /// ```
    pub fn inject(&self, context: &SpanContext, carrier: &mut dyn Injector) {
        if context.is_baggage_only() {
            if self.inject.contains(&Style::Baggage) {
                baggage::inject(&context.upstream.baggage, carrier);
            }
            return;
        }
        let state = InjectState::of(context);
        let with_datadog = self.inject.contains(&Style::Datadog);
        for style in &self.inject {
            match style {
                Style::Datadog => datadog::inject(&state, carrier, self.max_tags_len),
                Style::TraceContext => tracecontext::inject(&state, carrier, with_datadog),
                Style::Baggage => baggage::inject(&state.context.upstream.baggage, carrier),
            }
        }
    }

    /// Reads a context from `carrier`, following the styles' order and
    /// Datadog's rules between them.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{ExtractError, Propagator};
    ///
    /// let headers = vec![
    ///     ("x-datadog-trace-id".to_owned(), "1890081292213679918".to_owned()),
    ///     ("x-datadog-parent-id".to_owned(), "7628922200302827473".to_owned()),
    /// ];
    /// let context = Propagator::default().extract(&headers).unwrap();
    /// assert_eq!(context.trace_id_low(), 1890081292213679918);
    /// let none: Vec<(String, String)> = Vec::new();
    /// assert_eq!(Propagator::default().extract(&none).unwrap_err(), ExtractError::NotFound);
    /// ```
    pub fn extract<E: Extractor + ?Sized>(&self, carrier: &E) -> Result<SpanContext, ExtractError> {
        let mut first_error = None;
        let mut primary: Option<Extracted> = None;
        let mut w3c: Option<Extracted> = None;
        // The contexts of the styles after the first that gave one.
        let mut others: Vec<(Style, Extracted)> = Vec::new();
        for style in &self.extract {
            let result = match style {
                Style::Datadog => datadog::extract(carrier, self.max_tags_len),
                Style::TraceContext => tracecontext::extract(carrier, self.max_tags_len),
                Style::Baggage => continue,
            };
            match result {
                Ok(Some(extracted)) => {
                    if *style == Style::TraceContext {
                        w3c = Some(extracted.clone());
                    }
                    if primary.is_none() {
                        primary = Some(extracted);
                    } else {
                        others.push((*style, extracted));
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    crate::util::diagnostics::debug(format_args!("{style:?} propagation: {error}"));
                    first_error.get_or_insert(error);
                }
            }
        }
        let Some(mut context) = primary else {
            if let Some(error) = first_error {
                return Err(error);
            }
            // Baggage and no trace context: a context of baggage alone, so
            // that the new trace carries it (ddtrace does the same).
            if self.extract.contains(&Style::Baggage) {
                let baggage = baggage::extract(carrier);
                if !baggage.is_empty() {
                    return Ok(SpanContext::baggage_only(baggage));
                }
            }
            return Err(ExtractError::NotFound);
        };
        let same_trace = |w: &Extracted| {
            w.trace_id == context.trace_id
                // Datadog headers without (or with an unreadable) _dd.p.tid
                // name the same trace by its lower half.
                || (crate::util::id::high_bits(context.trace_id) == 0
                    && crate::util::id::low_bits(w.trace_id) == crate::util::id::low_bits(context.trace_id))
        };
        // Another style naming another trace: the first style's context
        // wins and the span started under it links to the other one, as
        // ddtrace's `HTTPPropagator.extract` does.
        let terminated: Vec<Link> = others
            .iter()
            .filter(|(_, other)| !same_trace(other))
            .filter_map(|(style, other)| terminated_link(*style, other))
            .collect();
        if let Some(w3c) = w3c.filter(same_trace) {
            reconcile(&mut context, w3c);
        }
        context.upstream.links = terminated;
        if self.extract.contains(&Style::Baggage) {
            context.upstream.baggage = baggage::extract(carrier);
        }
        Ok(SpanContext {
            trace_id: context.trace_id,
            span_id: context.span_id,
            sampling_priority: context.sampling_priority,
            upstream: Arc::new(context.upstream),
            local_trace: None,
            service: None,
        })
    }
}

/// The link ddtrace adds to the context of a style that named another
/// trace than the first style: its ids, its `tracestate` (tracecontext
/// only) and sampled flag, `reason: terminated_context` and the style.
fn terminated_link(style: Style, other: &Extracted) -> Option<Link> {
    let context = SpanContext {
        trace_id: other.trace_id,
        span_id: other.span_id,
        sampling_priority: other.sampling_priority,
        upstream: Arc::new(other.upstream.clone()),
        local_trace: None,
        service: None,
    };
    let mut link = link_to(&context)?;
    let name = match style {
        Style::Datadog => "datadog",
        Style::TraceContext => "tracecontext",
        Style::Baggage => return None,
    };
    if style != Style::TraceContext {
        link.tracestate = None;
    }
    link.with_attributes([
        ("reason", AttributeValue::from("terminated_context")),
        ("context_headers", AttributeValue::from(name)),
    ]);
    Some(link)
}

/// A span link to `context` (its ids, `tracestate` and sampled flag), or
/// `None` for a context with no span (baggage only).
pub(crate) fn link_to(context: &SpanContext) -> Option<Link> {
    if context.trace_id == 0 || context.span_id == 0 {
        return None;
    }
    // A local trace whose decision still waits (sampling rules on the
    // root) gives no flag yet, as a context with no decision does.
    let priority = context
        .local_trace
        .as_ref()
        .and_then(|trace| trace.decided_priority())
        .or(context.sampling_priority);
    Some(Link {
        trace_id: context.trace_id,
        span_id: context.span_id,
        tracestate: tracestate_of(context),
        flags: priority.map(|p| u32::from(p > 0)),
        attributes: Vec::new(),
    })
}

/// The W3C `tracestate` of `context`, as tracecontext injection writes it
/// (what a span link to it carries); `None` without a span id.
pub(crate) fn tracestate_of(context: &SpanContext) -> Option<String> {
    let mut headers: Vec<(String, String)> = Vec::new();
    tracecontext::inject(&InjectState::of(context), &mut headers, true);
    headers
        .into_iter()
        .find(|(k, _)| k == "tracestate")
        .map(|(_, v)| v)
}

/// Datadog headers first, tracecontext for the same trace: the W3C parent
/// is the real caller (a W3C-only hop may sit between), and the Datadog
/// parent goes to `_dd.parent_id`; the other vendors' `tracestate` is kept.
fn reconcile(context: &mut Extracted, w3c: Extracted) {
    context.trace_id = w3c.trace_id;
    if w3c.upstream.tracestate.is_some() {
        context.upstream.tracestate = w3c.upstream.tracestate;
    }
    if w3c.span_id != context.span_id {
        let last_parent = w3c
            .last_parent_id
            .unwrap_or_else(|| format!("{:016x}", context.span_id));
        context.span_id = w3c.span_id;
        context
            .upstream
            .root_meta
            .push(("_dd.parent_id".to_owned(), last_parent));
    }
}

/// A `_dd.p.*` tag that may travel: printable ASCII, no separators
/// (Datadog's rule for `x-datadog-tags`, applied to both directions).
pub(crate) fn valid_tag(key: &str, value: &str) -> bool {
    key.starts_with("_dd.p.")
        && key.len() > "_dd.p.".len()
        && key
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !value.is_empty()
        && value
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b',')
}

/// What every style needs from a context, computed once per injection.
pub(crate) struct InjectState<'a> {
    pub(crate) context: &'a SpanContext,
    /// `_dd.p.*` tags as they travel, `_dd.p.tid` included.
    pub(crate) tags: Vec<(String, String)>,
    /// The local trace's decision, made now if it waited: what is injected
    /// is what the trace's chunks will say.
    local_priority: Option<i8>,
}

impl<'a> InjectState<'a> {
    fn of(context: &'a SpanContext) -> InjectState<'a> {
        let mut tags: Vec<(String, String)> = context
            .upstream
            .propagated_tags
            .iter()
            .filter(|(k, v)| k != "_dd.p.tid" && valid_tag(k, v))
            .cloned()
            .collect();
        let mut local_priority = None;
        if let Some(trace) = &context.local_trace {
            let decision = trace.decide_now(|root_id, decide| {
                crate::context::stack::with_local_record(root_id, |root| decide(root));
            });
            local_priority = Some(decision.priority);
            if let (Some(mechanism), true) = (decision.mechanism, decision.keep()) {
                tags.retain(|(k, _)| k != "_dd.p.dm");
                tags.push(("_dd.p.dm".to_owned(), format!("-{mechanism}")));
            } else if decision.mechanism.is_some() {
                // Dropped here: no decision maker travels (as ddtrace).
                tags.retain(|(k, _)| k != "_dd.p.dm");
            }
        }
        let high = crate::util::id::high_bits(context.trace_id);
        if high != 0 {
            tags.push(("_dd.p.tid".to_owned(), format!("{high:016x}")));
        }
        InjectState {
            context,
            tags,
            local_priority,
        }
    }

    /// The sampling priority, when decided (a context built by hand may
    /// carry none; it is then not invented).
    pub(crate) fn priority(&self) -> Option<i8> {
        self.local_priority.or(self.context.sampling_priority)
    }
}

/// Headers: the context is extracted with the tracer's styles; headers
/// without a valid context give a new root.
impl<T: Extractor + ?Sized> crate::context::parent::ParentSource for &T {
    fn into_parent(self) -> Option<SpanContext> {
        match Propagator::from_tracer().extract(self) {
            Ok(context) => Some(context),
            Err(error) => {
                crate::util::diagnostics::debug(format_args!(
                    "child_of: {error}; starting a new trace"
                ));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
