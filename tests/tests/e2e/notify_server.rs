//! A real local HTTP server standing in for the notify service: it records every `POST /v1/notify`.

use poem::listener::TcpAcceptor;
use poem::web::{Data, Json};
use poem::{EndpointExt, Request, Route, handler, post};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `Idempotency-Key` header.
    pub idempotency_key: String,
    /// The JSON body.
    pub body: Value,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// How long the server takes to answer each request (a slow notify service).
#[derive(Debug, Clone, Copy, Default)]
struct Delay(Duration);

/// A running recording server.
pub struct NotifyServer {
    pub addr: SocketAddr,
    log: Log,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

#[handler]
async fn notify(
    request: &Request,
    body: Json<Value>,
    log: Data<&Log>,
    delay: Data<&Delay>,
) -> &'static str {
    let idempotency_key = request
        .header("Idempotency-Key")
        .unwrap_or_default()
        .to_owned();
    if let Ok(mut log) = log.lock() {
        log.push(Received {
            idempotency_key,
            body: body.0,
        });
    }
    tokio::time::sleep(delay.0.0).await;
    "ok"
}

impl NotifyServer {
    /// Starts on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?).await
    }

    /// Starts on a free port; each request is recorded on arrival and answered after `delay`.
    pub async fn start_slow(delay: Duration) -> anyhow::Result<Self> {
        Self::start_with("127.0.0.1:0".parse()?, Delay(delay)).await
    }

    /// Starts on `addr` (e.g. the port of a service that was down until now).
    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<Self> {
        Self::start_with(addr, Delay::default()).await
    }

    async fn start_with(addr: SocketAddr, delay: Delay) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let log = Log::default();
        let app = Route::new()
            .at("/v1/notify", post(notify))
            .data(log.clone())
            .data(delay);
        let shutdown = CancellationToken::new();
        let stopped = shutdown.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            let server = poem::Server::new_with_acceptor(acceptor);
            let _ = server.run_with_graceful_shutdown(app, stopped, None).await;
        });
        Ok(Self {
            addr,
            log,
            shutdown,
            task,
        })
    }

    /// The base URL to configure as `EYE_NOTIFY_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Stops listening.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?;
        Ok(())
    }
}

/// A local address nothing listens on (yet): the notify service "down".
pub fn unused_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
