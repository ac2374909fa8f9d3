//! Slow clients cannot hold connections: a head or a body that stops arriving, or a silent kept-alive
//! connection, is answered 408 or closed once its (short, test-configured) timeout has passed.

use crate::support::{Backend, Isolation, TestApp};
use eye_server::Role;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound on waiting for the server to give up on us; the old code never did.
const OUTER: Duration = Duration::from_secs(60);

async fn app() -> anyhow::Result<TestApp> {
    let mut isolation = Isolation::new(Backend::Embedded).await?;
    isolation.config.http_header_timeout = Duration::from_millis(500);
    isolation.config.http_body_timeout = Duration::from_millis(500);
    isolation.config.http_idle_timeout = Duration::from_secs(1);
    TestApp::start_with(isolation, Role::Api).await
}

async fn connect(app: &TestApp) -> anyhow::Result<TcpStream> {
    Ok(TcpStream::connect(app.base.trim_start_matches("http://")).await?)
}

/// Everything the server sends until it closes the connection (fails if it never does).
async fn read_until_closed(stream: &mut TcpStream) -> anyhow::Result<String> {
    let mut received = Vec::new();
    let reading = async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(OUTER, reading)
        .await
        .map_err(|_| anyhow::anyhow!("the server kept the connection open"))?;
    Ok(String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_stops_halfway_is_disconnected() -> anyhow::Result<()> {
    let app = app().await?;
    let mut stream = connect(&app).await?;
    stream
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: eye\r\nContent-Ty")
        .await?;
    let received = read_until_closed(&mut stream).await?;
    assert!(
        received.is_empty() || received.starts_with("HTTP/1.1 408"),
        "closed without an answer, or told 408: {received:?}"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_halfway_is_answered_408_and_disconnected() -> anyhow::Result<()> {
    let app = app().await?;
    let mut stream = connect(&app).await?;
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: eye\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"events\": [",
        app.ingest_key
    );
    stream.write_all(head.as_bytes()).await?;
    let received = read_until_closed(&mut stream).await?;
    assert!(
        received.starts_with("HTTP/1.1 408"),
        "told 408, then closed: {received:?}"
    );
    assert_eq!(app.metric("eye_events_accepted_total").await?, 0.0);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_kept_alive_connection_is_closed() -> anyhow::Result<()> {
    let app = app().await?;
    let mut stream = connect(&app).await?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: eye\r\n\r\n")
        .await?;
    let received = read_until_closed(&mut stream).await?;
    assert!(
        received.starts_with("HTTP/1.1 200"),
        "answered, then closed when nothing followed: {received:?}"
    );
    app.stop().await
}
