//! Email intake figures, each beside a baseline measured in the same run.
//!
//! Run: `cargo bench --bench email` (figures and method in docs/performance.md).
//!
//! - `parse`: a 10 KB and a 1 MB message (multipart: text, HTML, a base64 attachment) through
//!   mail-parser alone (the baseline), and through our parse to what the intake stores (the
//!   [`InboundEmail`](switchboard::channels::email::parse::InboundEmail) with loop signals,
//!   serialized to the JSON kept in the journal).
//! - `smtp_intake`: messages per second over SMTP into the real daemon with fsync on (each 250
//!   means committed), 8 connections in parallel, against the same client talking to a trivial
//!   SMTP server that answers 250 at once (the ceiling of the client and the loopback).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A multipart message of about `size` bytes: text, HTML and a base64 attachment.
fn message(size: usize) -> Vec<u8> {
    let text = "Hello, my order 12345 has not arrived and the tracking page shows nothing. \
                Could you check what happened? Thanks, Ada\r\n";
    let html = format!("<html><body><p>{}</p></body></html>\r\n", text.trim());
    let fixed = 1200;
    let attachment_bytes = size.saturating_sub(fixed) * 3 / 4;
    let payload: String = (0..attachment_bytes)
        .map(|i| (b'A' + (i % 26) as u8) as char)
        .collect();
    let encoded: String = payload
        .as_bytes()
        .chunks(57)
        .map(|chunk| format!("{}\r\n", base64(chunk)))
        .collect();
    format!(
        "From: Ada Lovelace <ada@example.org>\r\nTo: support@example.com\r\n\
         Subject: Order 12345 missing\r\n\
         Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         --outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n\
         --inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--inner--\r\n\
         --outer\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n\
         Content-Disposition: attachment; filename=\"data.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{encoded}--outer--\r\n"
    )
    .into_bytes()
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.sample_size(20);
    for (label, size) in [("10KB", 10 * 1024), ("1MB", 1024 * 1024)] {
        let raw = message(size);
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("mail_parser", label), |b| {
            b.iter(|| {
                let parsed = mail_parser::MessageParser::default().parse(&raw[..]);
                std::hint::black_box(parsed.map(|m| m.parts.len()))
            })
        });
        group.bench_function(BenchmarkId::new("switchboard_intake", label), |b| {
            b.iter(|| {
                let email =
                    switchboard::channels::email::parse::parse(&raw, Some("ada@example.org"))
                        .expect("parses");
                std::hint::black_box(serde_json::to_string(&email).expect("serializes"))
            })
        });
    }
    group.finish();
}

/// Messages sent so far, for unique Message-IDs.
static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Connections sending in parallel.
const CONNECTIONS: usize = 8;

/// Sends `count` messages over `CONNECTIONS` SMTP connections; returns the elapsed time.
async fn send(addr: SocketAddr, count: usize, raw: &[u8]) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let share = count / CONNECTIONS + usize::from(c < count % CONNECTIONS);
        let raw = raw.to_vec();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let mut io = BufReader::new(stream);
            let mut line = String::new();
            let reply = async |io: &mut BufReader<TcpStream>, line: &mut String| loop {
                line.clear();
                io.read_line(line).await.expect("read");
                if line.as_bytes().get(3) != Some(&b'-') {
                    assert!(line.starts_with('2') || line.starts_with('3'), "{line}");
                    return;
                }
            };
            reply(&mut io, &mut line).await;
            io.get_mut().write_all(b"EHLO bench\r\n").await.expect("write");
            reply(&mut io, &mut line).await;
            for i in 0..share {
                let from = format!("MAIL FROM:<bench{c}x{i}@example.org>\r\nRCPT TO:<support@example.com>\r\nDATA\r\n");
                io.get_mut().write_all(from.as_bytes()).await.expect("write");
                for _ in 0..3 {
                    reply(&mut io, &mut line).await;
                }
                // A Message-ID of its own, or the daemon would take it for a duplicate.
                let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = format!("Message-ID: <bench-{n}@example.org>\r\n");
                io.get_mut().write_all(id.as_bytes()).await.expect("write");
                io.get_mut().write_all(&raw).await.expect("write");
                io.get_mut().write_all(b".\r\n").await.expect("write");
                reply(&mut io, &mut line).await;
            }
            io.get_mut().write_all(b"QUIT\r\n").await.expect("write");
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    start.elapsed()
}

/// A trivial SMTP server: 250 to everything, 354 to DATA, 250 after the dot.
async fn trivial_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut io = BufReader::new(stream);
                let _ = io.get_mut().write_all(b"220 trivial\r\n").await;
                let mut line = Vec::new();
                let mut in_data = false;
                loop {
                    line.clear();
                    if io.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let reply: &[u8] = if in_data {
                        if line != b".\r\n" {
                            continue;
                        }
                        in_data = false;
                        b"250 ok\r\n"
                    } else if line.starts_with(b"DATA") {
                        in_data = true;
                        b"354 go\r\n"
                    } else if line.starts_with(b"QUIT") {
                        let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    if io.get_mut().write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn bench_smtp_intake(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = std::env::temp_dir().join(format!("sb-bench-email-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = switchboard::config::Config::embedded_default();
    config.email.sender_rate_limit.messages = 0;
    config.email.acknowledgement.queues.clear();
    let settings = switchboard::daemon::Settings {
        config,
        config_path: None,
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.clone(),
        admin_token: None,
        webhook_secret: None,
        callback_ca: None,
        agent_grace: Duration::from_secs(30),
        agent_keepalive: Duration::from_secs(20),
        fsync: true,
        max_open_contacts: 10_000_000,
        smtp_addr: Some("127.0.0.1:0".parse().expect("addr")),
        lmtp_addr: None,
        smtp_relay: None,
    };
    let daemon = runtime
        .block_on(switchboard::daemon::start(settings, None))
        .expect("daemon starts");
    let smtp = daemon.smtp_addr().expect("smtp");
    let trivial = runtime.block_on(trivial_server());
    let raw = message(2 * 1024);
    let mut group = c.benchmark_group("smtp_intake");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    for (name, addr) in [("trivial_server", trivial), ("switchboard_fsync", smtp)] {
        group.bench_function(BenchmarkId::new(name, "2KB"), |b| {
            b.iter_custom(|iters| runtime.block_on(send(addr, iters as usize, &raw)))
        });
    }
    group.finish();
    runtime.block_on(daemon.shutdown()).expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_parse, bench_smtp_intake);
criterion_main!(benches);
