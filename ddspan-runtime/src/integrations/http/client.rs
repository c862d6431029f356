//! The client layer: one `http` span per outgoing `http::Request`.

use std::borrow::Cow;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{tag_failure, tag_headers, tag_status, tracer_core, url, Finish, Traced, OPERATION};
use crate::runtime::TracerCore;
use crate::span::Span;

/// A `tower` layer for HTTP clients that take an `http::Request`
/// (hyper-util's `Client`, any `tower` service stack): a client span per
/// request, a child of the active span, whose context is injected into the
/// request's headers in the tracer's propagation styles, so the service
/// called continues the trace. See [the module](super) for the tags.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::integrations::http::ClientLayer;
/// use tower_layer::Layer;
///
/// # #[derive(Clone)] struct HyperClient;
/// // hyper-util: `ClientLayer::new().layer(Client::builder(TokioExecutor::new()).build_http())`
/// let client = ClientLayer::new().peer_service("billing").layer(HyperClient);
/// # drop(client);
/// ```
#[derive(Clone, Debug)]
pub struct ClientLayer {
    settings: ClientSettings,
}

/// The options of a client span.
#[derive(Clone, Debug)]
pub(super) struct ClientSettings {
    pub(super) component: Cow<'static, str>,
    pub(super) peer_service: Option<Cow<'static, str>>,
}

impl ClientLayer {
    /// The layer, with `component` = `tower` and no `peer.service`.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = ddspan_runtime::integrations::http::ClientLayer::new();
    /// # drop(layer);
    /// ```
    pub fn new() -> ClientLayer {
        ClientLayer {
            settings: ClientSettings {
                component: Cow::Borrowed("tower"),
                peer_service: None,
            },
        }
    }

    /// The `component` tag: the client library (`hyper`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = ddspan_runtime::integrations::http::ClientLayer::new().component("hyper");
    /// # drop(layer);
    /// ```
    pub fn component(mut self, component: impl Into<Cow<'static, str>>) -> ClientLayer {
        self.settings.component = component.into();
        self
    }

    /// The service called, as `peer.service` (with
    /// `_dd.peer.service.source` = `peer.service`, as Datadog's tracers
    /// mark a value set by the user). Without it, the agent names the peer
    /// from `out.host`.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = ddspan_runtime::integrations::http::ClientLayer::new().peer_service("billing");
    /// # drop(layer);
    /// ```
    pub fn peer_service(mut self, service: impl Into<Cow<'static, str>>) -> ClientLayer {
        self.settings.peer_service = Some(service.into());
        self
    }
}

impl Default for ClientLayer {
    fn default() -> ClientLayer {
        ClientLayer::new()
    }
}

impl<S> tower_layer::Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> ClientService<S> {
        ClientService {
            inner,
            settings: self.settings.clone(),
        }
    }
}

/// The service of [`ClientLayer`]: the inner client, each request in a
/// client span.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::integrations::http::{ClientLayer, ClientService};
/// use tower_layer::Layer;
///
/// let client: ClientService<()> = ClientLayer::new().layer(());
/// # drop(client);
/// ```
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
    settings: ClientSettings,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for ClientService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Display,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = ClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> ClientFuture<S::Future> {
        let core = tracer_core();
        let (mut parts, body) = request.into_parts();
        let span = start(
            &parts.method,
            Target::of(&parts.uri),
            &mut parts.headers,
            &self.settings,
            core.as_ref(),
        );
        let request = http::Request::from_parts(parts, body);
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ClientFuture {
            traced: Traced::new(inner, span, ClientFinish { core }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ClientService`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn response<F>(_: ddspan_runtime::integrations::http::ClientFuture<F>) {}
    /// ```
    pub struct ClientFuture<F> {
        #[pin]
        traced: Traced<F, ClientFinish>,
    }
}

impl<F, B, E> Future for ClientFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().traced.poll(cx)
    }
}

/// Where a client request goes.
pub(super) struct Target<'a> {
    pub(super) scheme: Option<&'a str>,
    pub(super) host: Option<&'a str>,
    /// Only when the URL names one.
    pub(super) port: Option<u16>,
    pub(super) path: &'a str,
}

impl<'a> Target<'a> {
    fn of(uri: &'a http::Uri) -> Target<'a> {
        Target {
            scheme: uri.scheme_str(),
            host: uri.host(),
            port: uri.port_u16(),
            path: uri.path(),
        }
    }
}

/// Starts a client span (a child of the active span) and injects its
/// context into `headers`.
pub(super) fn start(
    method: &http::Method,
    target: Target<'_>,
    headers: &mut http::HeaderMap,
    settings: &ClientSettings,
    core: Option<&Arc<TracerCore>>,
) -> Span {
    let authority = match (target.host, target.port) {
        (Some(host), Some(port)) => Some(format!("{host}:{port}")),
        (host, _) => host.map(str::to_owned),
    };
    let mut builder = crate::tracer::span(OPERATION)
        .resource(method.as_str().to_owned())
        .span_type("http")
        .tag("span.kind", "client")
        .tag("component", settings.component.clone())
        .tag("http.method", method.as_str().to_owned())
        .tag(
            "http.url",
            url(target.scheme, authority.as_deref(), target.path),
        );
    if let Some(host) = target.host.filter(|h| !h.is_empty()) {
        builder = builder.tag("out.host", host.to_owned());
    }
    if let Some(port) = target.port {
        builder = builder.tag("network.destination.port", port);
    }
    if let Some(peer) = &settings.peer_service {
        builder = builder
            .tag("peer.service", peer.clone())
            .tag("_dd.peer.service.source", "peer.service");
    }
    let span = builder.start();
    if let Some(context) = span.context() {
        crate::tracer::inject(&context, headers);
    }
    tag_headers(&span, headers, super::header_tags(core), true);
    span
}

/// At the response: its status (an error within
/// `DD_TRACE_HTTP_CLIENT_ERROR_STATUSES`) and header tags; a transport
/// error marks the span.
pub(super) struct ClientFinish {
    pub(super) core: Option<Arc<TracerCore>>,
}

impl ClientFinish {
    pub(super) fn response(
        &self,
        span: &Span,
        status: http::StatusCode,
        headers: &http::HeaderMap,
    ) {
        let statuses = self
            .core
            .as_ref()
            .map(|c| &c.config.http_client_error_statuses);
        tag_status(span, status, statuses);
        tag_headers(span, headers, super::header_tags(self.core.as_ref()), false);
    }
}

impl<B, E: Display> Finish<Result<http::Response<B>, E>> for ClientFinish {
    fn finish(self, span: &Span, output: &Result<http::Response<B>, E>) {
        match output {
            Ok(response) => self.response(span, response.status(), response.headers()),
            Err(error) => tag_failure(span, error),
        }
    }
}
