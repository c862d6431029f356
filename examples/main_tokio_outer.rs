//! `#[tokio::main]` above `#[dd_span]` on `async fn main`.
use ddspan::dd_span;

#[dd_span]
async fn work() -> u32 {
    tokio::task::yield_now().await;
    2
}

#[tokio::main]
#[dd_span]
async fn main() {
    println!("{}", work().await);
}
