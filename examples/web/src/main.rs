//! A web service traced end to end: an axum router behind ddspan's server
//! layer, a handler calling `#[dd_span]` functions, and a downstream call
//! through reqwest with ddspan's middleware.
//!
//! ```sh
//! cargo run -p ddspan-example-web                    # serves http://127.0.0.1:8080
//! curl localhost:8080/orders/7                       # 200, inventory checked downstream
//! curl localhost:8080/orders/13                      # 500: the inventory is unavailable
//! ```
//!
//! Environment: `PORT` (default 8080; 0 picks a free one), `DOWNSTREAM_URL`
//! (the inventory service; by default this service's own `/inventory`
//! route), `WEB_EXIT_AFTER` (stop after that many `/orders` requests), and
//! the tracer's `DD_*` variables (`DDSPAN_CONSOLE=true` draws each trace).
//! The first line on stdout is `listening on http://ADDRESS`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use ddspan::dd_span;
use ddspan::integrations::http::{ReqwestMiddleware, ServerLayer};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error("no order {0}")]
    NotFound(u64),
    #[error("inventory unavailable: {0}")]
    Inventory(String),
}

struct App {
    client: ClientWithMiddleware,
    inventory: String,
    /// `/orders` requests answered so far, and when to stop.
    served: AtomicUsize,
    exit_after: Option<usize>,
    shutdown: Notify,
}

#[dd_span(span.type = "sql", resource.name = "SELECT order", db.system = "postgresql")]
async fn load_order(id: u64) -> Result<String, OrderError> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if id == 0 {
        return Err(OrderError::NotFound(id));
    }
    Ok(format!("order-{id}"))
}

#[dd_span(component = "inventory")]
async fn check_stock(app: &App, id: u64) -> Result<u32, OrderError> {
    let url = format!("{}/inventory/{id}", app.inventory);
    let response = app
        .client
        .get(&url)
        .send()
        .await
        .map_err(|e| OrderError::Inventory(e.to_string()))?;
    if !response.status().is_success() {
        return Err(OrderError::Inventory(response.status().to_string()));
    }
    let body = response
        .text()
        .await
        .map_err(|e| OrderError::Inventory(e.to_string()))?;
    Ok(body.trim().parse().unwrap_or(0))
}

async fn order(State(app): State<Arc<App>>, Path(id): Path<u64>) -> (StatusCode, String) {
    let answer = async {
        let order = load_order(id).await?;
        let stock = check_stock(&app, id).await?;
        Ok::<_, OrderError>(format!("{order}: {stock} in stock\n"))
    }
    .await;
    let served = app.served.fetch_add(1, Ordering::SeqCst) + 1;
    if app.exit_after.is_some_and(|limit| served >= limit) {
        app.shutdown.notify_one();
    }
    match answer {
        Ok(text) => (StatusCode::OK, text),
        Err(error @ OrderError::NotFound(_)) => (StatusCode::NOT_FOUND, format!("{error}\n")),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    }
}

/// The downstream service when no `DOWNSTREAM_URL` is given: item 13 is
/// out of reach.
async fn inventory(Path(id): Path<u64>) -> (StatusCode, String) {
    if id == 13 {
        return (StatusCode::SERVICE_UNAVAILABLE, "try later\n".into());
    }
    (StatusCode::OK, format!("{}\n", id % 5 + 1))
}

#[tokio::main]
async fn main() {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(8080);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the port");
    let address = listener.local_addr().expect("the bound address");
    let downstream = std::env::var("DOWNSTREAM_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| format!("http://{address}"));
    let app = Arc::new(App {
        client: ClientBuilder::new(reqwest::Client::new())
            .with(ReqwestMiddleware::new().peer_service("inventory"))
            .build(),
        inventory: downstream.trim_end_matches('/').to_owned(),
        served: AtomicUsize::new(0),
        exit_after: std::env::var("WEB_EXIT_AFTER")
            .ok()
            .and_then(|n| n.parse().ok()),
        shutdown: Notify::new(),
    });
    // `Router::layer`: the layer runs after routing, so it sees the route.
    let router = Router::new()
        .route("/orders/{id}", get(order))
        .route("/inventory/{id}", get(inventory))
        .layer(ServerLayer::new().component("axum"))
        .with_state(Arc::clone(&app));
    println!("listening on http://{address}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { app.shutdown.notified().await })
        .await
        .expect("serve");
    // Connections still open are closed by now: every span has finished.
    ddspan::tracer::flush(Duration::from_secs(5));
}
