//! A span's compile-time description, as `#[dd_span]` generates it.

use crate::record::tag::StaticTag;

/// Everything about a span known at compile time. `#[dd_span]` emits one
/// `static` of these per function, so starting the span copies no strings
/// and allocates nothing for them.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{LocalSpanGuard, SpanSpec, StaticTag};
///
/// static SPEC: SpanSpec = SpanSpec::new("cache.lookup")
///     .with_resource("GET user")
///     .with_tags(&[StaticTag::str("cache.backend", "redis")]);
/// let _span = LocalSpanGuard::start(&SPEC);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpanSpec {
    /// The operation name.
    pub name: &'static str,
    /// The resource; the name when `None`.
    pub resource: Option<&'static str>,
    /// The service; the parent's (or the tracer's) when `None`.
    pub service: Option<&'static str>,
    /// The span type (`web`, `sql`, `http`, `cache`, `custom`, ...).
    pub span_type: Option<&'static str>,
    /// Tags.
    pub tags: &'static [StaticTag],
}

impl SpanSpec {
    /// A span named `name` with no other settings.
    pub const fn new(name: &'static str) -> SpanSpec {
        SpanSpec {
            name,
            resource: None,
            service: None,
            span_type: None,
            tags: &[],
        }
    }

    /// Sets the resource.
    pub const fn with_resource(mut self, resource: &'static str) -> SpanSpec {
        self.resource = Some(resource);
        self
    }

    /// Sets the service.
    pub const fn with_service(mut self, service: &'static str) -> SpanSpec {
        self.service = Some(service);
        self
    }

    /// Sets the span type.
    pub const fn with_span_type(mut self, span_type: &'static str) -> SpanSpec {
        self.span_type = Some(span_type);
        self
    }

    /// Sets the tags.
    pub const fn with_tags(mut self, tags: &'static [StaticTag]) -> SpanSpec {
        self.tags = tags;
        self
    }
}
