//! The reqwest client: a `reqwest-middleware` middleware.

use std::borrow::Cow;

use reqwest_middleware::{Middleware, Next};

use super::client::{start, ClientFinish, ClientSettings, Target};
use super::{tag_failure, tracer_core, Finish, Traced};
use crate::span::Span;
use crate::ErrorFields;

/// A `reqwest-middleware` middleware: a client span per request, a child
/// of the active span, whose context is injected into the request's
/// headers in the tracer's propagation styles. See [the module](super) for
/// the tags; a failed request (connection refused, timeout) marks the span
/// with reqwest's error and its causes.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::integrations::http::ReqwestMiddleware;
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(ReqwestMiddleware::new().peer_service("billing"))
///     .build();
/// // client.get("http://billing/invoices/7").send().await
/// # drop(client);
/// ```
#[derive(Clone, Debug)]
pub struct ReqwestMiddleware {
    settings: ClientSettings,
}

impl ReqwestMiddleware {
    /// The middleware, with `component` = `reqwest` and no `peer.service`.
    ///
    /// # Examples
    ///
    /// ```
    /// let middleware = ddspan_runtime::integrations::http::ReqwestMiddleware::new();
    /// # drop(middleware);
    /// ```
    pub fn new() -> ReqwestMiddleware {
        ReqwestMiddleware {
            settings: ClientSettings {
                component: Cow::Borrowed("reqwest"),
                peer_service: None,
            },
        }
    }

    /// The service called, as `peer.service` (with
    /// `_dd.peer.service.source` = `peer.service`). Without it, the agent
    /// names the peer from `out.host`.
    ///
    /// # Examples
    ///
    /// ```
    /// let middleware = ddspan_runtime::integrations::http::ReqwestMiddleware::new()
    ///     .peer_service("billing");
    /// # drop(middleware);
    /// ```
    pub fn peer_service(mut self, service: impl Into<Cow<'static, str>>) -> ReqwestMiddleware {
        self.settings.peer_service = Some(service.into());
        self
    }
}

impl Default for ReqwestMiddleware {
    fn default() -> ReqwestMiddleware {
        ReqwestMiddleware::new()
    }
}

#[async_trait::async_trait]
impl Middleware for ReqwestMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let core = tracer_core();
        let method = request.method().clone();
        let url = request.url().clone();
        let target = Target {
            scheme: Some(url.scheme()),
            host: url.host_str(),
            port: url.port(),
            path: url.path(),
        };
        let span = start(
            &method,
            target,
            request.headers_mut(),
            &self.settings,
            core.as_ref(),
        );
        Traced::new(
            next.run(request, extensions),
            span,
            ReqwestFinish(ClientFinish { core }),
        )
        .await
    }
}

struct ReqwestFinish(ClientFinish);

impl Finish<reqwest_middleware::Result<reqwest::Response>> for ReqwestFinish {
    fn finish(self, span: &Span, output: &reqwest_middleware::Result<reqwest::Response>) {
        match output {
            Ok(response) => self.0.response(span, response.status(), response.headers()),
            Err(reqwest_middleware::Error::Reqwest(error)) => {
                span.record_error(ErrorFields::from_error(error));
            }
            Err(error) => tag_failure(span, error),
        }
    }
}
