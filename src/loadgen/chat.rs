//! `switchboard loadgen-chat`: many customer chats waiting at once, measured from the outside.
//!
//! It creates `agents` agents and connects them (away, so nothing is answered), connects
//! `chats` customers that start a chat and wait in line, and reads the daemon's resident
//! memory (`/proc/<pid>/status`) before and after: memory per waiting chat. Then the customer
//! at the head of the line closes, everyone behind moves up one, and it times the fan-out of
//! the new positions: from the close to the last customer hearing its `queued` update.
//!
//! The baseline, in the same run: this binary started again as a bare websocket server
//! (`loadgen-chat --echo-server`: tokio-tungstenite, echo and broadcast, nothing else), the same
//! number of idle connections (memory per connection), and one broadcast frame to all of them
//! (the fan-out floor of one process writing to that many sockets).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The daemon's HTTP address.
    pub addr: SocketAddr,
    /// Admin token, for creating agents.
    pub admin_token: Option<String>,
    /// The daemon's pid, for its memory.
    pub daemon_pid: u32,
    /// Customer chats to keep waiting.
    pub chats: usize,
    /// Agents connected (away) meanwhile.
    pub agents: usize,
    /// Menu option the customers choose, if the daemon shows a menu.
    pub option: String,
}

/// Figures of one run.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// Chats waiting.
    pub chats: usize,
    /// Agents connected.
    pub agents: usize,
    /// Daemon resident memory growth per waiting chat, bytes.
    pub daemon_bytes_per_chat: f64,
    /// Echo server resident memory growth per idle connection, bytes.
    pub echo_bytes_per_connection: f64,
    /// From the head of line's close to the last `queued` update, ms.
    pub fanout_last_ms: f64,
    /// From the first to the last `queued` update of that fan-out, ms.
    pub fanout_spread_ms: f64,
    /// Customers that heard their new position.
    pub fanout_received: usize,
    /// From the broadcast request to the last echo-server frame, ms.
    pub echo_broadcast_last_ms: f64,
}

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

async fn connect(url: &str) -> Result<Socket, String> {
    tokio_tungstenite::connect_async(url)
        .await
        .map(|(s, _)| s)
        .map_err(|e| format!("{url}: {e}"))
}

async fn next_json(socket: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

async fn wait_for(socket: &mut Socket, kind: &str) -> Option<Value> {
    loop {
        let frame = next_json(socket).await?;
        if frame["type"] == kind {
            return Some(frame);
        }
    }
}

async fn send(socket: &mut Socket, value: Value) -> Result<(), String> {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .map_err(|e| e.to_string())
}

/// Runs the measurement; `echo` is the address of a bare websocket server (another process).
pub async fn run(options: Options, echo: SocketAddr, echo_pid: u32) -> Result<Report, String> {
    let target = super::Target {
        addr: options.addr,
        host: options.addr.to_string(),
    };
    let mut conn = super::Connection::open(&target).await?;
    let mut agents = Vec::new();
    for n in 0..options.agents {
        let body = json!({"id": format!("chatload-{n}"), "skills": {"technical": 5, "billing": 5},
                          "capacity": {"chat": 3}});
        let request = super::request(
            &target,
            hyper::Method::POST,
            "/v1/agents",
            options.admin_token.as_deref(),
            body.to_string().into(),
        );
        let (_, answer) = conn.exchange(request).await.map_err(|e| e.to_string())?;
        let created: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        let token = created["token"]
            .as_str()
            .ok_or("no agent token")?
            .to_string();
        let mut socket =
            connect(&format!("ws://{}/v1/agent/ws?token={token}", options.addr)).await?;
        send(
            &mut socket,
            json!({"type": "set_state", "state": "away", "reason": "load test"}),
        )
        .await?;
        agents.push(socket);
    }

    let before = rss(options.daemon_pid);
    let mut customers = Vec::with_capacity(options.chats);
    for chunk in 0..options.chats.div_ceil(250) {
        let mut batch = Vec::new();
        for _ in 0..250.min(options.chats - chunk * 250) {
            let url = format!("ws://{}/v1/chat/ws", options.addr);
            let option = options.option.clone();
            batch.push(tokio::spawn(async move {
                let mut socket = connect(&url).await?;
                send(
                    &mut socket,
                    json!({"type": "start", "name": "load", "text": "hello"}),
                )
                .await?;
                let first = next_json(&mut socket).await.ok_or("no answer to start")?;
                if first["type"] == "menu" {
                    send(&mut socket, json!({"type": "choose", "option": option})).await?;
                }
                wait_for(&mut socket, "welcome").await.ok_or("no welcome")?;
                let queued = wait_for(&mut socket, "queued").await.ok_or("no queued")?;
                let position = queued["position"].as_u64().unwrap_or(0);
                Ok::<_, String>((socket, position))
            }));
        }
        for task in batch {
            customers.push(task.await.map_err(|e| e.to_string())??);
        }
    }
    // Let the router's position ticks settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss(options.daemon_pid);
    let daemon_bytes_per_chat = after.saturating_sub(before) as f64 / options.chats as f64;

    // The head of the line leaves; everyone else moves up one.
    customers.sort_by_key(|(_, position)| *position);
    let (mut head, _) = customers.remove(0);
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    for (mut socket, _) in customers.drain(..) {
        let tx = tx.clone();
        tokio::spawn(async move {
            if wait_for(&mut socket, "queued").await.is_some() {
                let _ = tx.send(Instant::now());
            }
            // Keep the socket open until the run ends.
            let _ = tokio::time::timeout(Duration::from_secs(15), socket.next()).await;
        });
    }
    drop(tx);
    let closed_at = Instant::now();
    send(&mut head, json!({"type": "close"})).await?;
    let mut times = Vec::new();
    while let Ok(Some(at)) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        times.push(at);
        if times.len() + 1 == options.chats {
            break;
        }
    }
    let fanout_last_ms = times
        .iter()
        .max()
        .map_or(f64::NAN, |t| (*t - closed_at).as_secs_f64() * 1000.0);
    let fanout_spread_ms = match (times.iter().min(), times.iter().max()) {
        (Some(a), Some(b)) => (*b - *a).as_secs_f64() * 1000.0,
        _ => f64::NAN,
    };

    // Baseline: the same number of idle connections to a bare websocket server.
    let echo_before = rss(echo_pid);
    let mut idle = Vec::with_capacity(options.chats);
    for _ in 0..options.chats {
        idle.push(connect(&format!("ws://{echo}/")).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let echo_after = rss(echo_pid);
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let mut first = idle.remove(0);
    for mut socket in idle.drain(..) {
        let tx = tx.clone();
        tokio::spawn(async move {
            if next_json(&mut socket).await.is_some() {
                let _ = tx.send(Instant::now());
            }
        });
    }
    drop(tx);
    let asked = Instant::now();
    send(&mut first, json!({"type": "broadcast"})).await?;
    let mut echo_times = Vec::new();
    while let Ok(Some(at)) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        echo_times.push(at);
        if echo_times.len() + 1 == options.chats {
            break;
        }
    }
    let echo_broadcast_last_ms = echo_times
        .iter()
        .max()
        .map_or(f64::NAN, |t| (*t - asked).as_secs_f64() * 1000.0);
    drop(agents);
    Ok(Report {
        chats: options.chats,
        agents: options.agents,
        daemon_bytes_per_chat,
        echo_bytes_per_connection: echo_after.saturating_sub(echo_before) as f64
            / options.chats as f64,
        fanout_last_ms,
        fanout_spread_ms,
        fanout_received: times.len(),
        echo_broadcast_last_ms,
    })
}

/// The baseline server: accepts websockets, reads text frames, and on `{"type":"broadcast"}`
/// sends one frame to every connection. Prints its address on stdout.
pub async fn echo_server() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    let peers: Arc<Mutex<Vec<mpsc::Sender<String>>>> = Arc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let peers = peers.clone();
        tokio::spawn(async move {
            // The same 4 KiB read buffer the daemon gives each connection, so the baseline
            // compares like with like (tungstenite's default is 128 KiB).
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(4 * 1024);
            let Ok(socket) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            let (mut sink, mut stream) = socket.split();
            let (tx, mut rx) = mpsc::channel::<String>(16);
            peers.lock().await.push(tx);
            let writer = tokio::spawn(async move {
                while let Some(text) = rx.recv().await {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
            });
            while let Some(Ok(Message::Text(text))) = stream.next().await {
                if text.contains("broadcast") {
                    let frame = json!({"type": "queued", "position": 1}).to_string();
                    for peer in peers.lock().await.iter() {
                        let _ = peer.try_send(frame.clone());
                    }
                }
            }
            writer.abort();
        });
    }
}
