//! The HTTP server: hyper serving the poem endpoint, with limits on slow and silent clients. poem's own
//! `Server` bounds only inactivity (which a client trickling one byte at a time never reaches), and hyper's
//! header timeout also runs while a kept-alive connection waits for its next request; so each connection
//! gets a watchdog that tells a trickling head from a quiet connection. Reading the body is bounded where
//! it is read (`api::body`).

mod allow;
mod watch;

pub use allow::{AllowedMethods, with_allow_header};
pub use watch::ClientTimeouts;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, Request};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use watch::{Activity, Watched};

/// How long connections may finish their requests after shutdown begins.
const GRACE: Duration = Duration::from_secs(10);

type SharedEndpoint = Arc<BoxEndpoint<'static>>;

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    app: BoxEndpoint<'static>,
    timeouts: ClientTimeouts,
    shutdown: CancellationToken,
) {
    let app: SharedEndpoint = Arc::new(app);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        // Reap finished connections so the set does not grow with every connection ever served.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, remote)) => {
                let connection = Connection {
                    app: app.clone(),
                    remote,
                    timeouts,
                    shutdown: shutdown.clone(),
                };
                connections.spawn(connection.serve(stream));
            }
            Err(err) => {
                // Out of file descriptors, typically: wait a little rather than spin.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(GRACE, drained).await.is_err() {
        tracing::warn!("closing connections still busy after the grace period");
    }
}

/// Answers one request with the poem endpoint, counting it as under way meanwhile.
async fn handle(
    app: SharedEndpoint,
    activity: Activity,
    (local, remote): (LocalAddr, RemoteAddr),
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<BoxBody<Bytes, std::io::Error>>, Infallible> {
    let _in_flight = activity.request_started();
    let request = Request::from((req, local, remote, Scheme::HTTP));
    Ok(app.get_response(request).await.into())
}

/// One accepted connection.
struct Connection {
    app: SharedEndpoint,
    remote: SocketAddr,
    timeouts: ClientTimeouts,
    shutdown: CancellationToken,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(_) => return,
        };
        let activity = Activity::new();
        let service = {
            let (app, activity, remote) = (self.app.clone(), activity.clone(), self.remote);
            hyper::service::service_fn(move |req| {
                let addrs = (LocalAddr(local.into()), RemoteAddr(remote.into()));
                handle(app.clone(), activity.clone(), addrs, req)
            })
        };
        let builder = auto::Builder::new(TokioExecutor::new());
        let io = TokioIo::new(Watched::new(stream, activity.clone()));
        let conn = builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(conn);
        let mut draining = false;
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                expired = activity.expired(self.timeouts) => {
                    tracing::debug!(remote = %self.remote, ?expired, "closing a slow or silent connection");
                    return;
                }
                () = self.shutdown.cancelled(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
