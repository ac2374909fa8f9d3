//! Tracks `--count` events over `--sessions` sessions from several tasks, shuts down, and
//! prints the counters.
//!
//! ```text
//! cargo run -p eye-sdk --example send -- --url http://localhost:8080 --key KEY --count 1000 --sessions 10
//! ```

use std::error::Error;
use std::time::Duration;

use eye_sdk::{Client, Event};
use serde_json::json;

/// Tasks tracking concurrently.
const TASKS: usize = 4;

/// The command line.
struct Args {
    url: String,
    key: String,
    count: usize,
    sessions: usize,
}

impl Args {
    fn parse() -> Result<Self, String> {
        let mut args = Args {
            url: String::new(),
            key: String::new(),
            count: 100,
            sessions: 4,
        };
        let mut words = std::env::args().skip(1);
        while let Some(flag) = words.next() {
            let value = words
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--url" => args.url = value,
                "--key" => args.key = value,
                "--count" => args.count = number(&flag, &value)?,
                "--sessions" => args.sessions = number(&flag, &value)?.max(1),
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        if args.url.is_empty() || args.key.is_empty() {
            return Err("usage: send --url URL --key KEY [--count N] [--sessions N]".into());
        }
        Ok(args)
    }
}

fn number(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} must be a number, got {value}"))
}

/// Tracks the events numbered `task`, `task + TASKS`, … below `count`.
async fn track_share(client: Client, task: usize, args: (usize, usize)) -> Result<(), String> {
    let (count, sessions) = args;
    for n in (task..count).step_by(TASKS) {
        let event = Event::new(format!("session-{}", n % sessions), "example", "tick")
            .data(json!({ "n": n, "task": task }));
        client.track(event).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter("eye_sdk=info")
        .init();
    let args = Args::parse()?;
    let client = Client::builder(&args.url, &args.key).build()?;

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            tokio::spawn(track_share(
                client.clone(),
                task,
                (args.count, args.sessions),
            ))
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let outcome = client.shutdown(Duration::from_secs(30)).await;

    let stats = client.stats();
    println!(
        "sent: {}, retried: {}, failed: {}",
        stats.sent, stats.retried, stats.failed
    );
    outcome?;
    Ok(())
}
