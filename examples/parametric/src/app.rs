//! The protocol's endpoints on ddspan's public API.
//!
//! The client drives one tracer through ids: every span it starts stays
//! addressable (finished or not) until `/trace/span/flush`, and every
//! context it extracts is kept under the id returned for it, so that a
//! later `span/start` can name either as `parent_id`. The "current span" is
//! the server's own notion, as in ddtrace's reference server: requests run
//! on whatever task the runtime picks, so a thread's active span means
//! nothing across them. A span's start makes it current; its finish makes
//! its parent (a span started here) current again.
//!
//! What ddspan's API has no call for answers as Datadog's own Rust app
//! does: 404, which the protocol reads as "not implemented"
//! (`remove_baggage`, `remove_all_baggage`, `remote-config/apply`, the
//! OTel routes).
//! CONFORMANCE.md lists each with the issue item that adds it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ddspan::{tracer, Config, ErrorFields, Span, SpanContext};
use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::protocol::{
    attributes, AddEvent, AddLink, ExtractHeaders, Extracted, GetBaggage, Id, Injected, SetBaggage,
    SetError, SetMeta, SetMetric, SetResource, SpanArgs, SpanIds, StartSpan,
};
use crate::settings::TraceConfig;

/// How long `span/flush` waits for the writer to deliver: the tests read
/// the agent right after it answers.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// An answer: a status and a JSON body.
pub(crate) type Reply = (StatusCode, Vec<u8>);

/// The server's state: the tracer's configuration and the registries.
pub(crate) struct App {
    config: Config,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    /// Spans started through the protocol, until a flush after their finish.
    spans: HashMap<u64, Started>,
    /// Contexts extracted from headers, by the id returned for them.
    extracted: HashMap<u64, SpanContext>,
    /// The span `span/current` reports.
    current: Option<u64>,
}

struct Started {
    span: Span,
    trace_id: u128,
    /// The parent when it is a span started here: current again after
    /// this one finishes.
    local_parent: Option<u64>,
    finished: bool,
}

/// Ids for what has no span id of its own: contexts of baggage alone, and
/// spans that do not record (tracing disabled): the high bit and a
/// counter, as Datadog's Rust app numbers them. A clash with a random
/// 64-bit span id is as unlikely as one between two spans.
fn synthetic_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    (1 << 63) | NEXT.fetch_add(1, Ordering::Relaxed)
}

impl App {
    pub(crate) fn new(config: Config) -> App {
        App {
            config,
            registry: Mutex::new(Registry::default()),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers one request. `None`: no such route (the harness's readiness
    /// probe expects 404 for an unknown path).
    pub(crate) fn handle(&self, method: &Method, path: &str, body: &[u8]) -> Option<Reply> {
        let reply = match (method.as_str(), path) {
            ("POST", "/trace/span/start") => with(body, |a| self.start(a)),
            ("POST", "/trace/span/finish") => with(body, |a| self.finish(a)),
            ("GET", "/trace/span/current") => ok(&self.current()),
            ("POST", "/trace/span/set_meta") => with(body, |a| self.set_meta(a)),
            ("POST", "/trace/span/set_metric") => with(body, |a| self.set_metric(a)),
            ("POST", "/trace/span/set_resource") => with(body, |a| self.set_resource(a)),
            ("POST", "/trace/span/error") => with(body, |a| self.set_error(a)),
            // No manual keep/drop in ddspan's API yet (issue #14, item 2):
            // a no-op success, as Datadog's Rust app answers.
            ("POST", "/trace/span/manual_keep") => with(body, |a: SpanArgs| {
                self.on_span(a.span_id, |span| {
                    span.keep_trace();
                    json!({})
                })
            }),
            ("POST", "/trace/span/manual_drop") => with(body, |a: SpanArgs| {
                self.on_span(a.span_id, |span| {
                    span.drop_trace();
                    json!({})
                })
            }),
            ("POST", "/trace/span/add_link") => with(body, |a| self.add_link(a)),
            ("POST", "/trace/span/add_event") => with(body, |a| self.add_event(a)),
            ("POST", "/trace/span/inject_headers") => with(body, |a| self.inject(a)),
            ("POST", "/trace/span/extract_headers") => with(body, |a| self.extract(a)),
            ("POST", "/trace/span/set_baggage") => with(body, |a| self.set_baggage(a)),
            ("GET", "/trace/span/get_baggage") => with(body, |a| self.get_baggage(a)),
            ("GET", "/trace/span/get_all_baggage") => with(body, |a| self.get_all_baggage(a)),
            ("POST", "/trace/span/flush") => ok(&json!({ "success": self.flush() })),
            // `tracer::flush` sends every bucket of client-side stats too.
            ("POST", "/trace/stats/flush") => {
                ok(&json!({ "success": tracer::flush(FLUSH_TIMEOUT) }))
            }
            // The client requires `success` here after every test, OTel or not.
            ("POST", "/trace/otel/flush") => ok(&json!({ "success": self.flush() })),
            ("POST", "/log/otel/flush") => ok(&json!({
                "success": false,
                "message": "ddspan has no OpenTelemetry logs provider",
            })),
            ("GET", "/trace/config") => ok(&TraceConfig::of(&self.config, |name| {
                std::env::var(name).ok()
            })),
            ("GET", "/trace/agent/ensure_agent_info") => ok(&json!({ "ready": true })),
            // The crash-tracking tests only need the process to die the way
            // a crash does.
            ("GET", "/trace/crash") => std::process::abort(),
            _ => return None,
        };
        Some(reply)
    }

    fn start(&self, args: StartSpan) -> Result<SpanIds, Reply> {
        let mut registry = self.registry();
        // A started span first, then an extracted context (as ddtrace's
        // reference server looks them up); an unknown id starts a root.
        let (parent, local_parent) = match args.parent_id {
            Some(Id(id)) => match registry.spans.get(&id) {
                Some(started) => (started.span.context(), Some(id)),
                None => (registry.extracted.get(&id).cloned(), None),
            },
            None => (None, None),
        };
        let mut builder = tracer::span(args.name).child_of(parent);
        if let Some(service) = args.service {
            builder = builder.service(service);
        }
        if let Some(resource) = args.resource {
            builder = builder.resource(resource);
        }
        if let Some(span_type) = args.span_type {
            builder = builder.span_type(span_type);
        }
        for (key, value) in args.span_tags {
            builder = builder.tag(key, value);
        }
        let span = builder.start();
        let (span_id, trace_id) = match span.context() {
            Some(context) => (context.span_id(), context.trace_id()),
            None => (synthetic_id(), 0),
        };
        registry.spans.insert(
            span_id,
            Started {
                span,
                trace_id,
                local_parent,
                finished: false,
            },
        );
        registry.current = Some(span_id);
        Ok(SpanIds { span_id, trace_id })
    }

    fn finish(&self, args: SpanArgs) -> Result<Value, Reply> {
        let mut registry = self.registry();
        let started = registry
            .spans
            .get_mut(&args.span_id.0)
            .ok_or_else(|| unknown(args.span_id))?;
        started.span.finish();
        started.finished = true;
        let parent = started.local_parent;
        registry.current = parent.filter(|id| registry.spans.contains_key(id));
        Ok(json!({}))
    }

    fn current(&self) -> SpanIds {
        let registry = self.registry();
        registry
            .current
            .and_then(|id| registry.spans.get(&id).map(|s| (id, s.trace_id)))
            .map_or(
                SpanIds {
                    span_id: 0,
                    trace_id: 0,
                },
                |(span_id, trace_id)| SpanIds { span_id, trace_id },
            )
    }

    /// Runs `f` on a registered span; 400 for an unknown id.
    fn on_span<T>(&self, id: Id, f: impl FnOnce(&Span) -> T) -> Result<T, Reply> {
        let registry = self.registry();
        let started = registry.spans.get(&id.0).ok_or_else(|| unknown(id))?;
        Ok(f(&started.span))
    }

    fn set_meta(&self, args: SetMeta) -> Result<Value, Reply> {
        let id = args.span_id;
        self.on_span(id, |span| {
            if let Some((key, value)) = args.text() {
                span.set_tag(key, value);
            }
        })?;
        Ok(json!({}))
    }

    fn set_metric(&self, args: SetMetric) -> Result<Value, Reply> {
        self.on_span(args.span_id, |span| {
            if let Some(value) = args.value.as_f64() {
                span.set_tag(args.key, value);
            }
        })?;
        Ok(json!({}))
    }

    fn set_resource(&self, args: SetResource) -> Result<Value, Reply> {
        self.on_span(args.span_id, |span| span.set_resource(args.resource))?;
        Ok(json!({}))
    }

    fn set_error(&self, args: SetError) -> Result<Value, Reply> {
        let fields = ErrorFields::new(args.message, args.error_type).with_stack(args.stack);
        self.on_span(args.span_id, |span| span.record_error(fields))?;
        Ok(json!({}))
    }

    /// A link to a span started here or to an extracted context (as
    /// ddtrace's reference server looks them up); 400 for an unknown one.
    fn add_link(&self, args: AddLink) -> Result<Value, Reply> {
        let target = {
            let registry = self.registry();
            match registry.spans.get(&args.parent_id.0) {
                Some(started) => started.span.context(),
                None => Some(
                    registry
                        .extracted
                        .get(&args.parent_id.0)
                        .cloned()
                        .ok_or_else(|| unknown(args.parent_id))?,
                ),
            }
        };
        let attributes = attributes(args.attributes);
        let attributes: Vec<(&str, ddspan::AttributeValue)> = attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        self.on_span(args.span_id, |span| {
            if let Some(target) = &target {
                span.add_link(target, &attributes);
            }
        })?;
        Ok(json!({}))
    }

    fn add_event(&self, args: AddEvent) -> Result<Value, Reply> {
        let attributes = attributes(args.attributes);
        let attributes: Vec<(&str, ddspan::AttributeValue)> = attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let time = match args.timestamp {
            Some(nanos) => std::time::UNIX_EPOCH + Duration::from_nanos(nanos),
            None => std::time::SystemTime::now(),
        };
        self.on_span(args.span_id, |span| {
            span.add_event_at(&args.name, time, &attributes)
        })?;
        Ok(json!({}))
    }

    fn inject(&self, args: SpanArgs) -> Result<Injected, Reply> {
        let context = self.on_span(args.span_id, Span::context)?;
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(context) = context {
            tracer::inject(&context, &mut headers);
        }
        for (name, _) in &mut headers {
            name.make_ascii_lowercase();
        }
        Ok(Injected {
            http_headers: headers,
        })
    }

    fn extract(&self, args: ExtractHeaders) -> Result<Extracted, Reply> {
        // Repeated headers stay repeated: ddspan's extract rejects a
        // duplicated traceparent, as the tracecontext tests expect.
        let context = match tracer::extract(&args.http_headers) {
            Ok(context) => context,
            Err(error) => {
                eprintln!("parametric: extract: {error}");
                return Ok(Extracted { span_id: None });
            }
        };
        let id = if context.is_baggage_only() {
            synthetic_id()
        } else {
            context.span_id()
        };
        self.registry().extracted.insert(id, context);
        Ok(Extracted { span_id: Some(id) })
    }

    fn set_baggage(&self, args: SetBaggage) -> Result<Value, Reply> {
        self.on_span(args.span_id, |span| {
            span.set_baggage_item(args.key, args.value);
        })?;
        Ok(json!({}))
    }

    fn get_baggage(&self, args: GetBaggage) -> Result<Value, Reply> {
        let value = self.on_span(args.span_id, |span| span.baggage_item(&args.key))?;
        Ok(json!({ "baggage": value }))
    }

    fn get_all_baggage(&self, args: SpanArgs) -> Result<Value, Reply> {
        let baggage = self.on_span(args.span_id, |span| {
            span.context()
                .map(|c| c.baggage().iter().cloned().collect::<HashMap<_, _>>())
                .unwrap_or_default()
        })?;
        Ok(json!({ "baggage": baggage }))
    }

    /// Sends every finished trace now and forgets the finished spans and
    /// the extracted contexts. Spans still open stay: dropping one would
    /// finish it (ddspan finishes a span on drop), and ddtrace's server
    /// never finishes a span the test left open.
    fn flush(&self) -> bool {
        let delivered = tracer::flush(FLUSH_TIMEOUT);
        let mut registry = self.registry();
        registry.spans.retain(|_, started| !started.finished);
        registry.extracted.clear();
        if registry
            .current
            .is_some_and(|id| !registry.spans.contains_key(&id))
        {
            registry.current = None;
        }
        if !delivered {
            eprintln!("parametric: flush: not everything was delivered to the agent");
        }
        delivered
    }
}

/// Parses the JSON body, runs the endpoint, answers 200 with its JSON (or
/// the endpoint's own error). A body that does not parse is a 400.
fn with<A: DeserializeOwned, R: Serialize>(
    body: &[u8],
    endpoint: impl FnOnce(A) -> Result<R, Reply>,
) -> Reply {
    let args = match serde_json::from_slice::<A>(body) {
        Ok(args) => args,
        Err(error) => return fail(StatusCode::BAD_REQUEST, &format!("bad request: {error}")),
    };
    match endpoint(args) {
        Ok(result) => ok(&result),
        Err(reply) => reply,
    }
}

fn ok(body: &impl Serialize) -> Reply {
    match serde_json::to_vec(body) {
        Ok(json) => (StatusCode::OK, json),
        Err(error) => fail(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

fn fail(status: StatusCode, message: &str) -> Reply {
    eprintln!("parametric: {status}: {message}");
    (status, json!({ "error": message }).to_string().into_bytes())
}

fn unknown(id: Id) -> Reply {
    fail(
        StatusCode::BAD_REQUEST,
        &format!("no span with id {}", id.0),
    )
}
