//! Starting a span with options: [`SpanBuilder`], what `tracer::span` and
//! `#[dd_span]` on futures use.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use crate::context::stack::{self, Parent};
use crate::record::link::{AttributeValue, Link};
use crate::record::spec::SpanSpec;
use crate::record::tag::TagValue;
use crate::record::DYNAMIC;
use crate::runtime::registry;
use crate::span::Span;
use crate::trace::SpanInner;
use crate::util::clock;

/// Options for a new [`Span`], from [`tracer::span`] (a name set at run
/// time) or [`SpanBuilder::from_spec`] (a name known at compile time).
///
/// [`tracer::span`]: crate::tracer::span
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let span = tracer::span("db.query")
///     .resource("SELECT * FROM users WHERE id = ?")
///     .span_type("sql")
///     .tag("db.system", "postgresql")
///     .start();
/// span.finish();
/// ```
#[must_use = "call .start() to start the span"]
pub struct SpanBuilder {
    spec: &'static SpanSpec,
    name: Option<Cow<'static, str>>,
    resource: Option<Cow<'static, str>>,
    service: Option<Cow<'static, str>>,
    span_type: Option<Cow<'static, str>>,
    tags: Vec<(Cow<'static, str>, TagValue)>,
    parent: Parent,
    start_time: Option<SystemTime>,
    /// Span links, with the count of attributes each left out.
    links: Vec<(Link, u32)>,
}

impl std::fmt::Debug for SpanBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanBuilder")
            .field("name", &self.name.as_deref().unwrap_or(self.spec.name))
            .field("resource", &self.resource.as_deref().or(self.spec.resource))
            .field("service", &self.service.as_deref().or(self.spec.service))
            .field(
                "span_type",
                &self.span_type.as_deref().or(self.spec.span_type),
            )
            .field("tags", &self.tags)
            .field("start_time", &self.start_time)
            .finish_non_exhaustive()
    }
}

impl SpanBuilder {
    pub(crate) fn new(name: Cow<'static, str>) -> SpanBuilder {
        SpanBuilder {
            name: Some(name),
            ..SpanBuilder::from_spec(&DYNAMIC)
        }
    }

    /// A builder for a span described at compile time (what `#[dd_span]` on
    /// an `async fn` uses): the spec's strings are never copied.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{SpanBuilder, SpanSpec};
    ///
    /// static SPEC: SpanSpec = SpanSpec::new("queue.consume").with_span_type("worker");
    /// let span = SpanBuilder::from_spec(&SPEC).tag("queue", "emails").start();
    /// ```
    pub fn from_spec(spec: &'static SpanSpec) -> SpanBuilder {
        SpanBuilder {
            spec,
            name: None,
            resource: None,
            service: None,
            span_type: None,
            tags: Vec::new(),
            parent: Parent::Active,
            start_time: None,
            links: Vec::new(),
        }
    }

    /// Sets the resource (the name by default).
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::span("http.request").resource("GET /users/:id").start();
    /// ```
    pub fn resource(mut self, resource: impl Into<Cow<'static, str>>) -> SpanBuilder {
        self.resource = Some(resource.into());
        self
    }

    /// Sets the service (the parent's, else the tracer's, by default).
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::span("redis.command").service("redis").start();
    /// ```
    pub fn service(mut self, service: impl Into<Cow<'static, str>>) -> SpanBuilder {
        self.service = Some(service.into());
        self
    }

    /// Sets the span type (`web`, `sql`, `http`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::span("db.query").span_type("sql").start();
    /// ```
    pub fn span_type(mut self, span_type: impl Into<Cow<'static, str>>) -> SpanBuilder {
        self.span_type = Some(span_type.into());
        self
    }

    /// Adds a tag (strings to `meta`; numbers and booleans to `metrics`).
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::span("render")
    ///     .tag("template", "invoice")
    ///     .tag("items", 12)
    ///     .start();
    /// ```
    pub fn tag(
        mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<TagValue>,
    ) -> SpanBuilder {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Sets the span's kind: the `span.kind` tag (`server`, `client`,
    /// `producer`, `consumer`, `internal`), as Datadog's tracers set it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{tracer, SpanKind};
    ///
    /// let span = tracer::span("http.request").kind(SpanKind::Client).start();
    /// ```
    pub fn kind(self, kind: crate::SpanKind) -> SpanBuilder {
        self.tag("span.kind", kind)
    }

    /// Makes the span a child of this parent: a `SpanContext` (or a
    /// reference to one), an `Option` of one (`None`: a new root, so an
    /// extraction's `.ok()` can be passed straight in), or incoming headers
    /// to extract it from.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::tracer;
    ///
    /// let parent = tracer::start_span("parent");
    /// let child = tracer::span("child").child_of(parent.context()).start();
    /// let headers = vec![("traceparent".to_owned(),
    ///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned())];
    /// let server = tracer::span("http.server").child_of(&headers).start();
    /// ```
    pub fn child_of(mut self, parent: impl crate::ParentSource) -> SpanBuilder {
        self.parent = Parent::Explicit(parent.into_parent());
        self
    }

    /// Links the span to another span's context, as
    /// [`Span::add_link`] does once it runs (the form OpenTelemetry's
    /// "links at creation" takes).
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::tracer;
    ///
    /// let batch = tracer::start_span("batch.receive");
    /// let span = tracer::span("message.process");
    /// let span = match batch.context() {
    ///     Some(context) => span.link(&context, &[("messaging.batch", true.into())]),
    ///     None => span,
    /// };
    /// span.start().finish();
    /// ```
    pub fn link(
        mut self,
        context: &crate::SpanContext,
        attributes: &[(&str, AttributeValue)],
    ) -> SpanBuilder {
        if let Some(mut link) = crate::propagation::link_to(context) {
            let dropped = link.with_attributes(attributes.iter().map(|(k, v)| (*k, v.clone())));
            self.links.push((link, dropped));
        }
        self
    }

    /// Makes the span a child of a span captured where a future was made.
    pub(crate) fn held_parent(mut self, parent: crate::context::stack::HeldParent) -> SpanBuilder {
        self.parent = Parent::Held(parent);
        self
    }

    /// Sets an explicit wall-clock start time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    ///
    /// let queued_at = SystemTime::now() - Duration::from_millis(250);
    /// let span = ddspan_runtime::tracer::span("queue.wait").start_time(queued_at).start();
    /// ```
    pub fn start_time(mut self, start: SystemTime) -> SpanBuilder {
        self.start_time = Some(start);
        self
    }

    /// Starts the span (not made active; see [`Span::enter`] and
    /// [`Span::entered`]). A no-op [`Span`] when no tracer runs.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::span("batch").start();
    /// let _active = span.entered();
    /// ```
    pub fn start(self) -> Span {
        match self.try_start() {
            Some(inner) => {
                let inner = Arc::new(inner);
                if inner.trace.root_span_id == inner.span_id {
                    inner.trace.set_root_span(&inner);
                }
                Span::from_inner(inner)
            }
            None => Span::noop(),
        }
    }

    /// Marks the span as measured (`_dd.measured`): the agent computes
    /// trace metrics for it even when it is not a service entry.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::span("cache.get").measured().start();
    /// ```
    pub fn measured(self) -> SpanBuilder {
        self.tag("_dd.measured", 1)
    }

    fn try_start(self) -> Option<SpanInner> {
        if !registry::is_running() {
            return None;
        }
        let own_service = self.service.or(self.spec.service.map(Cow::Borrowed));
        let terminated = terminated_links(&self.parent);
        let started = stack::start_shared(self.spec, self.name, own_service, self.parent)?;
        let mut record = started.record;
        for link in terminated {
            record.add_link(link, 0);
        }
        for (link, dropped) in self.links {
            record.add_link(link, dropped);
        }
        if let Some(resource) = self.resource {
            record.set_resource(resource);
        }
        if let Some(span_type) = self.span_type {
            record.set_span_type(span_type);
        }
        for (key, value) in self.tags {
            record.set_tag(key, value);
        }
        if let Some(start) = self.start_time {
            record.start = clock::system_time_nanos(start);
        }
        let span_id = record.span_id;
        Some(SpanInner::new(
            started.trace,
            span_id,
            started.service,
            record,
        ))
    }
}

/// The links extraction attached to a remote parent (another style's
/// context for another trace: `reason: terminated_context`), for the span
/// started under it.
pub(crate) fn terminated_links(parent: &Parent) -> Vec<Link> {
    match parent {
        Parent::Explicit(Some(context)) if context.local_trace.is_none() => {
            context.upstream.links.clone()
        }
        _ => Vec::new(),
    }
}
