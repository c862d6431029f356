//! The identity of a span that other spans can be parented on, on another
//! thread, in another task, or (through propagation) in another service.

use std::borrow::Cow;
use std::sync::Arc;

use crate::record::Upstream;
use crate::trace::TraceShared;

/// A span's context: trace id, span id, sampling priority, origin and the
/// propagated `_dd.p.*` trace tags.
///
/// A context taken from a local span also remembers that span's local trace,
/// so children started from it on any thread join the same trace chunk.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let parent = tracer::start_span("parent");
/// let context = parent.context();
/// std::thread::spawn(move || {
///     let _child = tracer::span("child").child_of(context).start();
/// })
/// .join()
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct SpanContext {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) sampling_priority: Option<i8>,
    pub(crate) upstream: Arc<Upstream>,
    pub(crate) local_trace: Option<Arc<TraceShared>>,
    /// The span's service when it is not the tracer's default (local spans).
    pub(crate) service: Option<Cow<'static, str>>,
}

impl SpanContext {
    /// A context received from another service: the trace and parent span ids
    /// are required and non-zero; the rest may be unknown.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanContext;
    ///
    /// let remote = SpanContext::remote(0x6b0335ef_00000000_1a3aeaeb_d301f72e, 7628922200302827473, Some(1)).unwrap();
    /// assert_eq!(remote.span_id(), 7628922200302827473);
    /// assert!(SpanContext::remote(0, 1, None).is_none());
    /// ```
    pub fn remote(
        trace_id: u128,
        span_id: u64,
        sampling_priority: Option<i8>,
    ) -> Option<SpanContext> {
        if trace_id as u64 == 0 || span_id == 0 {
            return None;
        }
        Some(SpanContext {
            trace_id,
            span_id,
            sampling_priority,
            upstream: Upstream::none(),
            local_trace: None,
            service: None,
        })
    }

    /// A context that carries only W3C baggage (a request with a `baggage`
    /// header and no trace context): a span started under it begins a new
    /// trace that carries the baggage, as ddtrace does.
    pub(crate) fn baggage_only(baggage: Vec<(String, String)>) -> SpanContext {
        SpanContext {
            trace_id: 0,
            span_id: 0,
            sampling_priority: None,
            upstream: Arc::new(Upstream {
                baggage,
                ..Upstream::default()
            }),
            local_trace: None,
            service: None,
        }
    }

    /// Whether this context carries baggage and no trace (its trace and span
    /// ids are 0): spans started under it begin a new trace.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::tracer;
    ///
    /// let headers = vec![("baggage".to_owned(), "user.id=42".to_owned())];
    /// if let Ok(context) = tracer::extract(&headers) {
    ///     assert!(context.is_baggage_only());
    ///     assert_eq!(context.baggage(), [("user.id".to_owned(), "42".to_owned())]);
    /// }
    /// ```
    pub fn is_baggage_only(&self) -> bool {
        self.trace_id == 0
    }

    /// Sets the origin (`_dd.origin`, e.g. `synthetics`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanContext;
    ///
    /// let context = SpanContext::remote(1, 2, Some(1)).unwrap().with_origin("synthetics");
    /// assert_eq!(context.origin(), Some("synthetics"));
    /// ```
    pub fn with_origin(mut self, origin: impl Into<String>) -> SpanContext {
        Arc::make_mut(&mut self.upstream).origin = Some(origin.into());
        self
    }

    /// Sets the propagated trace tags (`_dd.p.*`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanContext;
    ///
    /// let context = SpanContext::remote(1, 2, Some(2))
    ///     .unwrap()
    ///     .with_propagated_tags(vec![("_dd.p.dm".to_owned(), "-4".to_owned())]);
    /// assert_eq!(context.propagated_tags()[0].1, "-4");
    /// ```
    pub fn with_propagated_tags(mut self, tags: Vec<(String, String)>) -> SpanContext {
        Arc::make_mut(&mut self.upstream).propagated_tags = tags;
        self
    }

    /// The W3C baggage carried with this context.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::start_span("checkout");
    /// span.set_baggage_item("cart.id", "c-17");
    /// if let Some(context) = span.context() {
    ///     assert_eq!(context.baggage(), [("cart.id".to_owned(), "c-17".to_owned())]);
    /// }
    /// ```
    pub fn baggage(&self) -> &[(String, String)] {
        &self.upstream.baggage
    }

    /// The full 128-bit trace id.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanContext;
    ///
    /// let context = SpanContext::remote(0x6b0335ef_00000000_1a3aeaeb_d301f72e, 1, None).unwrap();
    /// assert_eq!(context.trace_id() >> 64, 0x6b0335ef_00000000);
    /// ```
    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }

    /// The lower 64 bits of the trace id, as sent in `trace_id` on the wire.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanContext;
    ///
    /// let context = SpanContext::remote(0x6b0335ef_00000000_1a3aeaeb_d301f72e, 1, None).unwrap();
    /// assert_eq!(context.trace_id_low(), 0x1a3aeaeb_d301f72e);
    /// ```
    pub fn trace_id_low(&self) -> u64 {
        crate::util::id::low_bits(self.trace_id)
    }

    /// The span id.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanContext;
    ///
    /// assert_eq!(SpanContext::remote(1, 7, None).unwrap().span_id(), 7);
    /// ```
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// The sampling priority, if decided.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanContext;
    ///
    /// assert_eq!(SpanContext::remote(1, 7, Some(2)).unwrap().sampling_priority(), Some(2));
    /// ```
    pub fn sampling_priority(&self) -> Option<i8> {
        self.sampling_priority
    }

    /// The origin, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanContext;
    ///
    /// assert_eq!(SpanContext::remote(1, 7, None).unwrap().origin(), None);
    /// ```
    pub fn origin(&self) -> Option<&str> {
        self.upstream.origin.as_deref()
    }

    /// The propagated trace tags (`_dd.p.*` received from upstream).
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::tracer;
    ///
    /// let headers = vec![
    ///     ("x-datadog-trace-id".to_owned(), "1".to_owned()),
    ///     ("x-datadog-parent-id".to_owned(), "2".to_owned()),
    ///     ("x-datadog-tags".to_owned(), "_dd.p.dm=-4".to_owned()),
    /// ];
    /// let context = tracer::extract(&headers).unwrap();
    /// assert_eq!(context.propagated_tags(), [("_dd.p.dm".to_owned(), "-4".to_owned())]);
    /// ```
    pub fn propagated_tags(&self) -> &[(String, String)] {
        &self.upstream.propagated_tags
    }

    /// What a new local trace under this context continues.
    pub(crate) fn continued(&self) -> crate::trace::Continued<'_> {
        crate::trace::Continued {
            trace_id: self.trace_id,
            sampling_priority: self.sampling_priority,
            upstream: &self.upstream,
        }
    }

    /// The context of a span of the local trace `trace`.
    pub(crate) fn local(
        trace: &Arc<TraceShared>,
        span_id: u64,
        service: Option<Cow<'static, str>>,
    ) -> SpanContext {
        SpanContext {
            trace_id: trace.trace_id,
            span_id,
            // None while the decision waits (see `sampling/mod.rs`).
            sampling_priority: trace.decided_priority(),
            upstream: trace.upstream_with_baggage(),
            local_trace: Some(Arc::clone(trace)),
            service,
        }
    }
}

impl std::fmt::Debug for SpanContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanContext")
            .field("trace_id", &format_args!("{:032x}", self.trace_id))
            .field("span_id", &self.span_id)
            .field("sampling_priority", &self.sampling_priority)
            .field("upstream", &self.upstream)
            .field("local", &self.local_trace.is_some())
            .finish()
    }
}
