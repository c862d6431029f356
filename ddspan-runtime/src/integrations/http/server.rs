//! The server layer: one `web` span per request.

use std::borrow::Cow;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{tag_failure, tag_headers, tag_status, tracer_core, url, Finish, Traced, OPERATION};
use crate::runtime::TracerCore;
use crate::span::Span;

/// A `tower` layer that gives each request a server span with Datadog's
/// web conventions (see [the module](super) for the tags), continuing the
/// trace of the incoming headers in the tracer's propagation styles. The
/// span is active while the inner service handles the request, so
/// `#[dd_span]` functions called there are its children.
///
/// With axum, add it with `Router::layer` so the route is known (feature
/// `axum`: `http.route` and the resource `GET /users/{id}` from
/// `MatchedPath`); elsewhere the resource is the method.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::integrations::http::ServerLayer;
/// use tower_layer::Layer;
///
/// # #[derive(Clone)] struct App;
/// # impl tower_service::Service<http::Request<String>> for App {
/// #     type Response = http::Response<String>;
/// #     type Error = std::convert::Infallible;
/// #     type Future = std::future::Ready<Result<http::Response<String>, std::convert::Infallible>>;
/// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
/// #         std::task::Poll::Ready(Ok(()))
/// #     }
/// #     fn call(&mut self, _: http::Request<String>) -> Self::Future {
/// #         std::future::ready(Ok(http::Response::new(String::new())))
/// #     }
/// # }
/// // axum: `Router::new().route("/users/{id}", get(user)).layer(ServerLayer::new())`
/// let service = ServerLayer::new().layer(App);
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct ServerLayer {
    component: Cow<'static, str>,
}

impl ServerLayer {
    /// The layer, with `component` = `tower`.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = ddspan_runtime::integrations::http::ServerLayer::new();
    /// # drop(layer);
    /// ```
    pub fn new() -> ServerLayer {
        ServerLayer {
            component: Cow::Borrowed("tower"),
        }
    }

    /// The `component` tag: the framework serving the requests (`axum`,
    /// `tonic`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = ddspan_runtime::integrations::http::ServerLayer::new().component("axum");
    /// # drop(layer);
    /// ```
    pub fn component(mut self, component: impl Into<Cow<'static, str>>) -> ServerLayer {
        self.component = component.into();
        self
    }
}

impl Default for ServerLayer {
    fn default() -> ServerLayer {
        ServerLayer::new()
    }
}

impl<S> tower_layer::Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> ServerService<S> {
        ServerService {
            inner,
            component: self.component.clone(),
        }
    }
}

/// The service of [`ServerLayer`]: the inner service, each request in a
/// server span.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::integrations::http::{ServerLayer, ServerService};
/// use tower_layer::Layer;
///
/// let service: ServerService<()> = ServerLayer::new().layer(());
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct ServerService<S> {
    inner: S,
    component: Cow<'static, str>,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for ServerService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Display,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = ServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> ServerFuture<S::Future> {
        let core = tracer_core();
        let span = start(&request, self.component.clone(), core.as_ref());
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ServerFuture {
            traced: Traced::new(inner, span, ServerFinish { core }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ServerService`]: the inner service's, with
    /// the request's span active on every poll.
    ///
    /// # Examples
    ///
    /// ```
    /// fn answer<F>(_: ddspan_runtime::integrations::http::ServerFuture<F>) {}
    /// ```
    pub struct ServerFuture<F> {
        #[pin]
        traced: Traced<F, ServerFinish>,
    }
}

impl<F, B, E> Future for ServerFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().traced.poll(cx)
    }
}

/// The route matched by axum's router, when the layer runs inside it.
fn route<B>(request: &http::Request<B>) -> Option<&str> {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
        return Some(path.as_str());
    }
    let _ = request;
    None
}

/// The path the client asked for: axum's `OriginalUri` when a nested
/// router has cut the prefix off the request's.
fn path<B>(request: &http::Request<B>) -> &str {
    #[cfg(feature = "axum")]
    if let Some(original) = request.extensions().get::<axum::extract::OriginalUri>() {
        return original.0.path();
    }
    request.uri().path()
}

fn start<B>(
    request: &http::Request<B>,
    component: Cow<'static, str>,
    core: Option<&Arc<TracerCore>>,
) -> Span {
    let headers = request.headers();
    let method = request.method().as_str().to_owned();
    let host = request.uri().authority().map(|a| a.as_str()).or_else(|| {
        headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    });
    let route = route(request);
    let resource = match route {
        Some(route) => format!("{method} {route}"),
        None => method.clone(),
    };
    let mut builder = crate::tracer::span(OPERATION)
        .resource(resource)
        .span_type("web")
        .measured()
        .tag("span.kind", "server")
        .tag("component", component)
        .tag("http.method", method)
        .tag(
            "http.url",
            url(request.uri().scheme_str(), host, path(request)),
        );
    if let Some(route) = route {
        builder = builder.tag("http.route", route.to_owned());
    }
    if let Some(agent) = headers
        .get(http::header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
    {
        builder = builder.tag("http.useragent", agent.to_owned());
    }
    if let Some(host) = host {
        let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
        builder = builder.tag("http.host", host.to_owned());
    }
    // No context in the headers: the active span, if any, is the parent
    // (a request served in-process); usually none, so a new trace.
    match crate::tracer::extract(headers) {
        Ok(parent) => builder = builder.child_of(parent),
        Err(crate::ExtractError::NotFound) => {}
        Err(error) => {
            crate::util::diagnostics::debug(format_args!(
                "incoming request: {error}; starting a new trace"
            ));
            builder = builder.child_of(None);
        }
    }
    let span = builder.start();
    tag_headers(&span, headers, super::header_tags(core), true);
    span
}

/// At the response: its status (an error within
/// `DD_TRACE_HTTP_SERVER_ERROR_STATUSES`) and header tags; an inner `Err`
/// marks the span.
struct ServerFinish {
    core: Option<Arc<TracerCore>>,
}

impl<B, E: Display> Finish<Result<http::Response<B>, E>> for ServerFinish {
    fn finish(self, span: &Span, output: &Result<http::Response<B>, E>) {
        match output {
            Ok(response) => {
                let statuses = self
                    .core
                    .as_ref()
                    .map(|c| &c.config.http_server_error_statuses);
                tag_status(span, response.status(), statuses);
                tag_headers(
                    span,
                    response.headers(),
                    super::header_tags(self.core.as_ref()),
                    false,
                );
            }
            Err(error) => tag_failure(span, error),
        }
    }
}
