//! `#[dd_span]` above `#[tokio::main]` on `async fn main`.
use ddspan::dd_span;

#[dd_span]
async fn work() -> u32 {
    tokio::task::yield_now().await;
    2
}

#[dd_span]
#[tokio::main]
async fn main() {
    println!("{}", work().await);
}
