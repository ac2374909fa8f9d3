//! A TCP proxy that a test can stall or cut, in front of PostgreSQL or Redis.

/// What a [`FaultyProxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards both ways.
    Open,
    /// Holds every byte, like a server that hangs (connections stay open).
    Stalled,
    /// Closes every connection, and new ones at once, like a server that is down. Held bytes are lost.
    Cut,
}

/// A TCP proxy in front of PostgreSQL or Redis that a test can stall or cut, and open again.
pub struct FaultyProxy {
    pub addr: std::net::SocketAddr,
    /// The mode, and how many cuts so far (a connection dies at the next cut even if the proxy is open
    /// again before it notices).
    mode: tokio::sync::watch::Sender<(ProxyMode, u64)>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, watching) = tokio::sync::watch::channel((ProxyMode::Open, 0));
        let upstream = upstream.to_owned();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                if watching.borrow().0 == ProxyMode::Cut {
                    continue;
                }
                connections.spawn(proxy_connection(client, upstream.clone(), watching.clone()));
            }
        });
        Ok(Self { addr, mode, task })
    }

    /// Changes what happens to traffic from now on.
    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_modify(|(now, cuts)| {
            *now = mode;
            if mode == ProxyMode::Cut {
                *cuts += 1;
            }
        });
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy_connection(
    client: tokio::net::TcpStream,
    upstream: String,
    mode: tokio::sync::watch::Receiver<(ProxyMode, u64)>,
) {
    let cuts = mode.borrow().1;
    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut cut = mode.clone();
    tokio::select! {
        _ = pump(client_read, server_write, mode.clone(), cuts) => {}
        _ = pump(server_read, client_write, mode, cuts) => {}
        _ = cut.wait_for(|(_, now)| *now != cuts) => {}
    }
}

/// Copies one direction, holding what it read while the proxy is stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: tokio::sync::watch::Receiver<(ProxyMode, u64)>,
    cuts: u64,
) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        mode.wait_for(|(m, n)| *m == ProxyMode::Open && *n == cuts)
            .await?;
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        // Held bytes of a connection cut meanwhile are never delivered.
        mode.wait_for(|(m, n)| *m == ProxyMode::Open && *n == cuts)
            .await?;
        to.write_all(&buffer[..n]).await?;
    }
}

/// `url` with its `host:port` replaced by `addr` (to send a service through a [`FaultyProxy`]).
pub fn via(url: &str, addr: std::net::SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"));
    let slash = if path.is_empty() && !url.ends_with('/') {
        ""
    } else {
        "/"
    };
    format!("{scheme}://{}{addr}{slash}{path}", user.unwrap_or_default())
}

/// `host:port` of a URL such as `postgres://user@host:port/db`.
pub fn authority_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}
