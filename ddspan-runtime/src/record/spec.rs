//! A span's compile-time description, as `#[dd_span]` generates it.

use crate::record::tag::StaticTag;

/// Everything about a span known at compile time. `#[dd_span]` emits one
/// `static` of these per function, so starting the span copies no strings
/// and allocates nothing for them.
///
/// Built only with the `const fn`s below (the fields are private, so new
/// settings can be added without breaking anyone); read with the accessors.
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
/// assert_eq!(SPEC.resource(), Some("GET user"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpanSpec {
    /// The operation name.
    pub(crate) name: &'static str,
    /// The resource; the name when `None`.
    pub(crate) resource: Option<&'static str>,
    /// The service; the parent's (or the tracer's) when `None`.
    pub(crate) service: Option<&'static str>,
    /// The span type (`web`, `sql`, `http`, `cache`, `custom`, ...).
    pub(crate) span_type: Option<&'static str>,
    /// Tags.
    pub(crate) tags: &'static [StaticTag],
}

impl SpanSpec {
    /// A span named `name` with no other settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanSpec;
    ///
    /// static SPEC: SpanSpec = SpanSpec::new("parse");
    /// assert_eq!(SPEC.name(), "parse");
    /// assert_eq!(SPEC.resource(), None);
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanSpec;
    ///
    /// static SPEC: SpanSpec = SpanSpec::new("db.query").with_resource("SELECT 1");
    /// assert_eq!(SPEC.resource(), Some("SELECT 1"));
    /// ```
    pub const fn with_resource(mut self, resource: &'static str) -> SpanSpec {
        self.resource = Some(resource);
        self
    }

    /// Sets the service.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanSpec;
    ///
    /// static SPEC: SpanSpec = SpanSpec::new("db.query").with_service("postgres");
    /// assert_eq!(SPEC.service(), Some("postgres"));
    /// ```
    pub const fn with_service(mut self, service: &'static str) -> SpanSpec {
        self.service = Some(service);
        self
    }

    /// Sets the span type.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanSpec;
    ///
    /// static SPEC: SpanSpec = SpanSpec::new("db.query").with_span_type("sql");
    /// assert_eq!(SPEC.span_type(), Some("sql"));
    /// ```
    pub const fn with_span_type(mut self, span_type: &'static str) -> SpanSpec {
        self.span_type = Some(span_type);
        self
    }

    /// Sets the tags.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{SpanSpec, StaticTag};
    ///
    /// static SPEC: SpanSpec =
    ///     SpanSpec::new("render").with_tags(&[StaticTag::number("template.version", 3.0)]);
    /// assert_eq!(SPEC.tags()[0].key(), "template.version");
    /// ```
    pub const fn with_tags(mut self, tags: &'static [StaticTag]) -> SpanSpec {
        self.tags = tags;
        self
    }

    /// The operation name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ddspan_runtime::SpanSpec::new("parse").name(), "parse");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The resource; `None` means the name.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanSpec;
    ///
    /// assert_eq!(SpanSpec::new("q").with_resource("SELECT 1").resource(), Some("SELECT 1"));
    /// ```
    pub const fn resource(&self) -> Option<&'static str> {
        self.resource
    }

    /// The service; `None` means the parent's, else the tracer's.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanSpec;
    ///
    /// assert_eq!(SpanSpec::new("q").service(), None);
    /// ```
    pub const fn service(&self) -> Option<&'static str> {
        self.service
    }

    /// The span type (`web`, `sql`, `http`, `cache`, `custom`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanSpec;
    ///
    /// assert_eq!(SpanSpec::new("q").with_span_type("sql").span_type(), Some("sql"));
    /// ```
    pub const fn span_type(&self) -> Option<&'static str> {
        self.span_type
    }

    /// The tags known at compile time.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::SpanSpec;
    ///
    /// assert!(SpanSpec::new("q").tags().is_empty());
    /// ```
    pub const fn tags(&self) -> &'static [StaticTag] {
        self.tags
    }
}
