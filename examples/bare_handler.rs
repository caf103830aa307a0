//! A bare axum handler for the load script (`benches/load.sh`): it answers every POST, whatever the path, with the
//! bytes of one file, read once at start-up, as `application/graphql-response+json`. The hub's figures are read
//! beside it: the same server stack, the same answer bytes, and none of the hub's work.
//!
//! `cargo run --release --example bare_handler -- <port> <body-file>`

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(path), None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: bare_handler <port> <body-file>".into());
    };
    let port: u16 = port.parse().map_err(|_| format!("not a port: {port}"))?;
    let body = Bytes::from(std::fs::read(&path).map_err(|error| format!("{path}: {error}"))?);

    let app = Router::new().fallback(move |method: Method| {
        let body = body.clone();
        async move { answer(&method, body) }
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn answer(method: &Method, body: Bytes) -> Response {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    ([(header::CONTENT_TYPE, "application/graphql-response+json")], body).into_response()
}
