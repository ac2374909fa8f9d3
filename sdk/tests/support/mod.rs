//! A real local HTTP server standing in for The Eye: records event ids, injects faults.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use eye_sdk::{Client, ClientBuilder, Event};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The ingest key the server accepts.
pub const KEY: &str = "test-key";

/// How long a test lets `shutdown` take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A client with fast retries, so faults cost milliseconds.
pub fn client_for(server: &TestServer) -> ClientBuilder {
    Client::builder(&server.url, KEY)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(10))
}

pub fn event(session: usize, n: usize) -> Event {
    Event::new(format!("session-{session}"), "test", "tick").data(json!({ "n": n }))
}

/// Polls `condition` for up to 30 s.
pub async fn wait_until(condition: impl Fn() -> bool) {
    for _ in 0..3000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 30 s");
}

/// Faults injected in this order: dropped connections, then error answers, then per request.
#[derive(Debug, Clone)]
pub struct Faults {
    /// The first N requests have their connection closed without an answer.
    pub drop_first: usize,
    /// The next N requests are answered with `fail_status`.
    pub fail_first: usize,
    /// Status for `fail_first` (503 or 429), with `Retry-After: retry_after`.
    pub fail_status: u16,
    /// Seconds of `Retry-After` on `fail_first` answers.
    pub retry_after: u32,
    /// Bodies larger than this are answered 413.
    pub max_body: usize,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            drop_first: 0,
            fail_first: 0,
            fail_status: 503,
            retry_after: 0,
            max_body: usize::MAX,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    faults: Faults,
    requests: usize,
    /// How many times each event id was accepted.
    received: HashMap<String, usize>,
    /// The distinct `sent_at` values of each request that had a JSON body, in arrival order.
    sent_at: Vec<Vec<String>>,
}

enum Answer {
    Drop,
    Fail(u16),
    Accept(Vec<String>),
}

/// The running server; stops when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Starts a server on 127.0.0.1 with an OS-assigned port.
    pub async fn start(faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = Arc::new(Mutex::new(State {
            faults,
            ..State::default()
        }));
        let task = tokio::spawn(serve(listener, Arc::clone(&state)));
        Self { url, state, task }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("server state not poisoned")
    }

    /// How many times each event id was accepted.
    pub fn received(&self) -> HashMap<String, usize> {
        self.state().received.clone()
    }

    /// How many requests arrived, whatever their answer.
    pub fn requests(&self) -> usize {
        self.state().requests
    }

    /// The distinct `sent_at` values of each request, in arrival order.
    pub fn sent_at(&self) -> Vec<Vec<String>> {
        self.state().sent_at.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = Arc::clone(&state);
        let service = service_fn(move |request| handle(Arc::clone(&state), request));
        tokio::spawn(async move {
            // Dropped connections end with an error here, on purpose.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Answers one request; an `Err` makes hyper close the connection without an answer.
async fn handle(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, io::Error> {
    let authorized = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {KEY}"));
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(io::Error::other)?
        .to_bytes();
    let (answer, retry_after) = {
        let mut state = state.lock().expect("server state not poisoned");
        (
            decide(&mut state, authorized, &body),
            state.faults.retry_after,
        )
    };
    match answer {
        Answer::Drop => Err(io::Error::other("fault: dropping the connection")),
        Answer::Fail(status) => Ok(problem(status, retry_after)),
        Answer::Accept(ids) => Ok(accepted(ids)),
    }
}

fn decide(state: &mut State, authorized: bool, body: &[u8]) -> Answer {
    state.requests += 1;
    state.sent_at.push(sent_at(body));
    let n = state.requests;
    let faults = &state.faults;
    if n <= faults.drop_first {
        return Answer::Drop;
    }
    if n <= faults.drop_first + faults.fail_first {
        return Answer::Fail(faults.fail_status);
    }
    if !authorized {
        return Answer::Fail(401);
    }
    if body.len() > faults.max_body {
        return Answer::Fail(413);
    }
    let Some(ids) = event_ids(body) else {
        return Answer::Fail(400);
    };
    for id in &ids {
        *state.received.entry(id.clone()).or_default() += 1;
    }
    Answer::Accept(ids)
}

fn event_ids(body: &[u8]) -> Option<Vec<String>> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let events = body.get("events")?.as_array()?;
    events
        .iter()
        .map(|e| Some(e.get("event_id")?.as_str()?.to_owned()))
        .collect()
}

fn sent_at(body: &[u8]) -> Vec<String> {
    let body: Value = serde_json::from_slice(body).unwrap_or_default();
    let mut stamps: Vec<String> = body["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["sent_at"].as_str().map(str::to_owned))
        .collect();
    stamps.dedup();
    stamps
}

fn accepted(ids: Vec<String>) -> Response<Full<Bytes>> {
    let body = json!({"accepted": ids.len(), "event_ids": ids});
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::ACCEPTED;
    response.headers_mut().insert(
        CONTENT_TYPE,
        "application/json".parse().expect("valid header"),
    );
    response
}

fn problem(status: u16, retry_after: u32) -> Response<Full<Bytes>> {
    let body = json!({"type": "about:blank", "title": "injected fault", "status": status,
                      "detail": format!("test server answered {status}")});
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).expect("valid status");
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        "application/problem+json".parse().expect("valid header"),
    );
    headers.insert(RETRY_AFTER, retry_after.into());
    response
}

/// Collects formatted log lines so tests can read them.
#[derive(Debug, Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// A subscriber writing into this capture.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let capture = self.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || capture.clone())
            .finish()
    }

    /// Everything logged so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log capture not poisoned")).into_owned()
    }
}

impl io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("log capture not poisoned")
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
