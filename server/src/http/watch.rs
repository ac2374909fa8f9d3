//! What a connection is doing, so that slow or silent clients can be cut off: a request head that
//! trickles in, or a kept-alive connection that sends nothing.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How long a client may take at each stage of a connection.
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    /// From the first byte of a request to the end of its head.
    pub header: Duration,
    /// With no request under way, how long a connection may stay silent.
    pub idle: Duration,
}

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// A request head did not arrive whole in time.
    Header,
    /// The connection was silent between requests.
    Idle,
}

#[derive(Debug)]
struct State {
    last_io: Instant,
    /// When the first byte of a request head arrived that has not become a request yet.
    head_since: Option<Instant>,
    in_flight: usize,
}

/// One connection's activity, shared by its socket, its requests and its watchdog.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Mutex<State>>);

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(State {
            last_io: Instant::now(),
            head_since: None,
            in_flight: 0,
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn read(&self) {
        self.with(|state| {
            let now = Instant::now();
            state.last_io = now;
            // Bytes while no request is under way start the next request's head.
            if state.in_flight == 0 && state.head_since.is_none() {
                state.head_since = Some(now);
            }
        });
    }

    fn wrote(&self) {
        self.with(|state| state.last_io = Instant::now());
    }

    /// A request's head has arrived; the request runs until the guard is dropped.
    pub fn request_started(&self) -> InFlight {
        self.with(|state| {
            state.in_flight += 1;
            state.head_since = None;
        });
        InFlight(self.clone())
    }

    /// The verdict now: expired, or when to look again.
    fn check(&self, limits: ClientTimeouts, now: Instant) -> Result<Instant, Expired> {
        self.with(|state| {
            if state.in_flight > 0 {
                // The handler and the body timeout bound a request; look again later.
                return Ok(now + limits.header.min(limits.idle));
            }
            let (since, limit, expired) = match state.head_since {
                Some(since) => (since, limits.header, Expired::Header),
                None => (state.last_io, limits.idle, Expired::Idle),
            };
            if now >= since + limit {
                Err(expired)
            } else {
                Ok(since + limit)
            }
        })
    }

    /// Resolves once the connection has overstayed a limit.
    pub async fn expired(&self, limits: ClientTimeouts) -> Expired {
        loop {
            match self.check(limits, Instant::now()) {
                Ok(next) => tokio::time::sleep_until(next).await,
                Err(expired) => return expired,
            }
        }
    }
}

/// A request under way (see [`Activity::request_started`]).
pub struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.with(|state| {
            state.in_flight = state.in_flight.saturating_sub(1);
            state.last_io = Instant::now();
        });
    }
}

/// A socket that reports its reads and writes to an [`Activity`].
pub struct Watched<T> {
    inner: T,
    activity: Activity,
}

impl<T> Watched<T> {
    /// Watches `inner`.
    pub fn new(inner: T, activity: Activity) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ClientTimeouts = ClientTimeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn a_head_that_does_not_complete_in_time_expires_by_the_header_limit() {
        let activity = Activity::new();
        tokio::time::sleep(Duration::from_secs(5)).await;
        activity.read();
        let started = Instant::now();
        assert_eq!(activity.expired(LIMITS).await, Expired::Header);
        assert_eq!(started.elapsed(), LIMITS.header);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_between_requests_expires_by_the_idle_limit() {
        let activity = Activity::new();
        drop(activity.request_started());
        let started = Instant::now();
        assert_eq!(activity.expired(LIMITS).await, Expired::Idle);
        assert_eq!(started.elapsed(), LIMITS.idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_under_way_never_expires_however_long_it_takes() {
        let activity = Activity::new();
        activity.read();
        let request = activity.request_started();
        let watch = tokio::time::timeout(Duration::from_secs(3600), activity.expired(LIMITS));
        assert!(watch.await.is_err(), "an hour-long request is not cut");
        drop(request);
        assert_eq!(activity.expired(LIMITS).await, Expired::Idle);
    }
}
