//! What a trace received from the calling service, kept as data: the
//! propagation module fills it, the local root's chunk carries it, the
//! encoder writes it.

use std::sync::Arc;

/// At most this many W3C baggage items kept per trace: a bound on memory.
/// What is injected is bounded apart, as ddtrace and dd-trace-go bound it
/// (64 items, 8192 bytes, up to the first item that does not fit:
/// `propagation/baggage.rs`), so an item that does not fit the header does
/// not let a later, smaller one take its place.
pub(crate) const BAGGAGE_MAX_ITEMS: usize = 256;
/// At most this many bytes of baggage kept per trace (`key=value` pairs
/// with their separators, before percent-encoding).
pub(crate) const BAGGAGE_MAX_BYTES: usize = 64 * 1024;

/// The bytes `baggage` takes on the wire, before percent-encoding.
pub(crate) fn baggage_bytes(baggage: &[(String, String)]) -> usize {
    baggage
        .iter()
        .map(|(key, value)| key.len() + value.len() + 2)
        .sum()
}

/// What a trace received from the service that called this one: carried by
/// every local span's context, re-injected downstream, and written on the
/// local root.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Upstream {
    /// `_dd.origin`.
    pub(crate) origin: Option<String>,
    /// `_dd.p.*` tags, except `_dd.p.tid` (derived from the trace id).
    pub(crate) propagated_tags: Vec<(String, String)>,
    /// The other vendors' `tracestate` members, passed on unchanged.
    pub(crate) tracestate: Option<String>,
    /// Meta for the local root: `_dd.parent_id`, `_dd.propagation_error`.
    pub(crate) root_meta: Vec<(String, String)>,
    /// W3C baggage.
    pub(crate) baggage: Vec<(String, String)>,
    /// Span links for the span started under this context: the contexts of
    /// other styles naming another trace (`reason: terminated_context`).
    pub(crate) links: Vec<crate::record::link::Link>,
}

impl Upstream {
    pub(crate) fn none() -> Arc<Upstream> {
        Arc::clone(Upstream::none_ref())
    }

    /// The shared empty upstream, borrowed: new traces compare against it
    /// rather than count another reference (a word every thread writes).
    pub(crate) fn none_ref() -> &'static Arc<Upstream> {
        static NONE: std::sync::LazyLock<Arc<Upstream>> =
            std::sync::LazyLock::new(|| Arc::new(Upstream::default()));
        &NONE
    }
}
