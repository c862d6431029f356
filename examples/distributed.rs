//! Two services on loopback, one trace across both: `storefront` calls
//! `inventory` over HTTP; the client injects its span's context into the
//! request and the server continues it with `#[dd_span(child_of = ...)]`.
//!
//! `cargo run --example distributed` (with an agent on localhost:8126, or
//! `DD_TRACE_AGENT_URL`, to see the trace).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use ddspan::{dd_span, tracer};

/// The inventory service: continues the caller's trace from the headers.
#[dd_span(span.name = "inventory.request", service.name = "inventory", span.type = "web", child_of = headers)]
fn serve(headers: &[(String, String)], stream: &mut TcpStream) -> std::io::Result<()> {
    let stock = count_stock();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{stock}",
        stock.to_string().len()
    )
}

#[dd_span(span.name = "inventory.count", resource.name = "SELECT count(*) FROM stock", span.type = "sql")]
fn count_stock() -> u32 {
    42
}

fn read_headers(stream: &TcpStream) -> std::io::Result<Vec<(String, String)>> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        match line.trim_end().split_once(':') {
            Some((name, value)) => headers.push((name.trim().to_owned(), value.trim().to_owned())),
            None => return Ok(headers),
        }
    }
}

/// The storefront service: a request span whose context travels in the
/// outgoing headers.
#[dd_span(span.name = "storefront.checkout", service.name = "storefront", resource.name = "POST /checkout")]
fn checkout(inventory: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let mut headers: HashMap<String, String> = HashMap::new();
    if let Some(context) = tracer::active_context() {
        tracer::inject(&context, &mut headers);
    }
    let mut request = ureq::get(inventory);
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let stock = request.call()?.body_mut().read_to_string()?;
    Ok(stock)
}

#[dd_span]
fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/stock", listener.local_addr()?);
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        let headers = read_headers(&stream)?;
        serve(&headers, &mut stream)
    });
    match checkout(&url) {
        Ok(stock) => println!("in stock: {stock}"),
        Err(error) => println!("checkout failed: {error}"),
    }
    server.join().expect("the inventory thread")?;
    if let Some(fields) = tracer::log_context() {
        println!("log line with {fields}");
    }
    Ok(())
}
