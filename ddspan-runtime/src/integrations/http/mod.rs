//! HTTP spans with Datadog's web conventions: a server span per request
//! ([`ServerLayer`], any `tower` stack: axum, tonic, hyper), and a client
//! span per outgoing request ([`ClientLayer`] for `http::Request` clients
//! such as hyper-util's, `ReqwestMiddleware` for reqwest with feature
//! `reqwest`).
//!
//! The tags are dd-trace-go's (`contrib/net/http`, `instrumentation/httptrace`):
//!
//! | tag | server | client |
//! |---|---|---|
//! | operation name | `http.request` | `http.request` |
//! | `span.type` | `web` | `http` |
//! | `span.kind` | `server` | `client` |
//! | `component` | `tower` (or set) | `tower` / `reqwest` (or set) |
//! | resource | `GET /users/{id}` with a route, else `GET` | `GET` |
//! | `http.method`, `http.url` (scheme, host, path; no query, no user info) | ✓ | ✓ |
//! | `http.route` | axum's `MatchedPath` (feature `axum`) | |
//! | `http.status_code` (a string, in `meta`) | ✓ | ✓ |
//! | `http.useragent`, `http.host`, `_dd.measured` | ✓ | |
//! | `out.host`, `network.destination.port` (when the URL has one) | | ✓ |
//! | `peer.service` | | when set on the layer |
//! | error | `DD_TRACE_HTTP_SERVER_ERROR_STATUSES` (`500-599`), an inner `Err`, a panic | `DD_TRACE_HTTP_CLIENT_ERROR_STATUSES` (`400-499`), a transport error |
//!
//! `DD_TRACE_HEADER_TAGS` headers are recorded on both. The server
//! extracts the incoming context in the tracer's propagation styles and
//! keeps its span active for the whole handler, so `#[dd_span]` functions
//! nest under it; the clients inject their span's context into the
//! outgoing headers. `http.client_ip` is not set: Datadog's tracers set it
//! only when `DD_TRACE_CLIENT_IP_ENABLED` is on, off by default.

use std::borrow::Cow;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::config::{HeaderTag, HttpStatuses};
use crate::runtime::TracerCore;
use crate::span::Span;
use crate::ErrorFields;

mod client;
#[cfg(feature = "reqwest")]
mod reqwest;
mod server;

pub use client::{ClientFuture, ClientLayer, ClientService};
#[cfg(feature = "reqwest")]
pub use reqwest::ReqwestMiddleware;
pub use server::{ServerFuture, ServerLayer, ServerService};

/// The operation name of server and client spans (dd-trace-go's, schema v0).
const OPERATION: &str = "http.request";

/// The running tracer, started from the environment if this is the first
/// span; its configuration holds the status rules and header tags.
fn tracer_core() -> Option<Arc<TracerCore>> {
    crate::runtime::registry::with_current(Arc::clone)
}

/// `scheme://host/path`: the query, the fragment and any user info left
/// out. With no host known, the path alone (as dd-trace-go).
fn url(scheme: Option<&str>, host: Option<&str>, path: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    match host.filter(|h| !h.is_empty()) {
        Some(host) => {
            let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
            format!("{}://{host}{path}", scheme.unwrap_or("http"))
        }
        None => path.to_owned(),
    }
}

/// A header's values as one tag value: joined with `,`, trimmed (as
/// dd-trace-go); `None` when absent or not text.
fn header_value(headers: &http::HeaderMap, name: &str) -> Option<String> {
    let mut joined = String::new();
    for value in headers.get_all(name) {
        let value = value.to_str().ok()?;
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(value);
    }
    let joined = joined.trim();
    (!joined.is_empty()).then(|| joined.to_owned())
}

/// The `DD_TRACE_HEADER_TAGS` headers of a request or a response.
fn tag_headers(span: &Span, headers: &http::HeaderMap, tags: &[HeaderTag], request: bool) {
    for tag in tags {
        if let Some(value) = header_value(headers, &tag.header) {
            let key = if request {
                &tag.request_tag
            } else {
                &tag.response_tag
            };
            span.set_tag(key.clone(), value);
        }
    }
}

fn header_tags(core: Option<&Arc<TracerCore>>) -> &[HeaderTag] {
    core.map_or(&[], |core| &core.config.header_tags)
}

/// `http.status_code` as a string (as Datadog's tracers send it), and the
/// error when `statuses` holds it: `error.message` `503: Service
/// Unavailable`, as dd-trace-go writes it.
fn tag_status(span: &Span, status: http::StatusCode, statuses: Option<&HttpStatuses>) {
    let code = status.as_u16();
    span.set_tag("http.status_code", code.to_string());
    if statuses.is_some_and(|statuses| statuses.contains(code)) {
        let reason = status.canonical_reason().unwrap_or("");
        span.record_error(ErrorFields::new(
            format!("{code}: {reason}")
                .trim_end_matches(": ")
                .to_owned(),
            "HttpStatus",
        ));
    }
}

/// An error that is not a response (an inner service's `Err`, a
/// transport failure): its message and type.
fn tag_failure<E: Display>(span: &Span, error: &E) {
    span.record_error(ErrorFields::new(
        crate::util::safe_display::display(error),
        Cow::Borrowed(std::any::type_name::<E>()),
    ));
}

/// What a span records when its request's future is ready.
trait Finish<T> {
    fn finish(self, span: &Span, output: &T);
}

pin_project_lite::pin_project! {
    /// A request's future with its span: active on every poll, finished when
    /// the future is ready (after `F` has recorded the outcome) or dropped.
    /// A panic while polling finishes it marked (`error.type` `panic`),
    /// even when a layer outside catches the panic and answers for it.
    struct Traced<Fut, F> {
        #[pin]
        inner: Fut,
        span: Option<Span>,
        finish: Option<F>,
    }
}

impl<Fut, F> Traced<Fut, F> {
    fn new(inner: Fut, span: Span, finish: F) -> Self {
        Traced {
            inner,
            span: Some(span),
            finish: Some(finish),
        }
    }
}

/// Drops the span while unwinding from a poll: `Span`'s own drop marks it
/// with the panic's message, as for any span a panic unwinds.
struct FinishOnUnwind<'a>(&'a mut Option<Span>);

impl Drop for FinishOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            drop(self.0.take());
        }
    }
}

impl<Fut: Future, F: Finish<Fut::Output>> Future for Traced<Fut, F> {
    type Output = Fut::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Fut::Output> {
        let this = self.project();
        let unwind = FinishOnUnwind(this.span);
        let entered = unwind.0.as_ref().map(Span::enter);
        let output = this.inner.poll(cx);
        drop(entered);
        if let Poll::Ready(output) = &output {
            if let Some(span) = unwind.0.take() {
                if let Some(finish) = this.finish.take() {
                    finish.finish(&span, output);
                }
                span.finish();
            }
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_no_query_and_no_credentials() {
        assert_eq!(
            url(Some("https"), Some("api:8443"), "/a/b"),
            "https://api:8443/a/b"
        );
        assert_eq!(url(None, Some("u:p@api"), ""), "http://api/");
        assert_eq!(url(None, None, "/only/path"), "/only/path");
    }

    #[test]
    fn header_values_join_and_skip_what_is_not_text() {
        let mut headers = http::HeaderMap::new();
        headers.append("x-a", " one ".parse().unwrap());
        headers.append("x-a", "two".parse().unwrap());
        headers.append("x-b", http::HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(header_value(&headers, "x-a").as_deref(), Some("one ,two"));
        assert_eq!(header_value(&headers, "x-b"), None);
        assert_eq!(header_value(&headers, "x-c"), None);
    }
}
