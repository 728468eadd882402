//! Helpers shared by the integration tests: temp directories and a minimal HTTP client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

pub mod smtp_sink;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A temp data directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("sb-daemon-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A minimal HTTP/1.1 exchange over a fresh connection: (status, JSON body or text).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let (status, _, body) = http_with_head(addr, method, path, headers, body).await;
    (status, body)
}

/// The same, also returning the response head (status line and headers) as text.
pub async fn http_with_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, head.to_string(), json)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends one message over SMTP; returns the final reply line.
pub async fn send_mail(
    smtp: SocketAddr,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(smtp).await.expect("connect");
    let mut io = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    io.read_line(&mut line).await.expect("greeting");
    let script = format!("EHLO mx.example.org\r\nMAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
    io.get_mut()
        .write_all(script.as_bytes())
        .await
        .expect("write");
    let mut replies = 0;
    while replies < 4 {
        line.clear();
        io.read_line(&mut line).await.expect("reply");
        if line.as_bytes().get(3) != Some(&b'-') {
            replies += 1;
        }
    }
    assert!(line.starts_with("354"), "{line}");
    let message = format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}\r\n.\r\n");
    io.get_mut()
        .write_all(message.as_bytes())
        .await
        .expect("write");
    line.clear();
    io.read_line(&mut line).await.expect("final reply");
    line
}

/// The admin bearer token the test daemons are started with.
pub const ADMIN: (&str, &str) = ("Authorization", "Bearer admin-secret");

/// The process's one Prometheus recorder (installing a second one fails).
pub fn metrics() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| switchboard::metrics::install().expect("one recorder per test process"))
        .clone()
}

/// An agent logged in on the websocket with its token.
pub async fn agent(addr: SocketAddr, token: &str) -> Socket {
    let url = format!("ws://{addr}/v1/agent/ws?token={token}");
    tokio_tungstenite::connect_async(url)
        .await
        .expect("agent connects")
        .0
}

/// The next JSON frame of the given type, skipping others (state updates and the like).
pub async fn expect(socket: &mut Socket, kind: &str) -> Value {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame within 5 s"))
            .expect("socket open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).expect("JSON frame");
            if value["type"] == kind {
                return value;
            }
        }
    }
}

/// Sends one JSON frame.
pub async fn say(socket: &mut Socket, value: Value) {
    use futures_util::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            value.to_string().into(),
        ))
        .await
        .expect("send");
}

/// Polls an admin GET until `done` holds for its JSON answer (at most 5 s): waits for an event
/// the test cannot subscribe to, without a fixed sleep.
pub async fn eventually(addr: SocketAddr, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, body) = http(addr, "GET", path, &[ADMIN], "").await;
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never got there: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Daemon settings for tests: port 0, the given data directory, the admin token above, a short
/// agent grace, no fsync, no mail listeners.
pub fn settings(dir: &TempDir) -> switchboard::daemon::Settings {
    switchboard::daemon::Settings {
        config: switchboard::config::Config::embedded_default(),
        config_path: None,
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.0.clone(),
        admin_token: Some("admin-secret".into()),
        webhook_secret: None,
        callback_ca: None,
        agent_grace: std::time::Duration::from_millis(300),
        agent_keepalive: std::time::Duration::from_secs(20),
        fsync: false,
        max_open_contacts: 10_000,
        smtp_addr: None,
        lmtp_addr: None,
        smtp_relay: None,
    }
}

/// Starts a daemon with the test process's metrics recorder.
pub async fn daemon(settings: switchboard::daemon::Settings) -> switchboard::daemon::Daemon {
    switchboard::daemon::start(settings, Some(metrics()))
        .await
        .expect("daemon starts")
}
