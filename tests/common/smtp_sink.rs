//! A tiny SMTP server that records what it is sent: the relay outgoing mail goes to in tests.
//! Deliberately independent of Switchboard's own SMTP code, so it checks it rather than
//! agreeing with it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message as the sink received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub recipients: Vec<String>,
    pub data: String,
}

/// The sink: what it received, and how many of the next messages it refuses with 451.
#[derive(Clone, Default)]
pub struct Sink {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub refuse_next: Arc<Mutex<u32>>,
}

impl Sink {
    /// Starts on 127.0.0.1:0; recipients starting with "blocked" get 550 at RCPT.
    pub async fn start() -> (SocketAddr, Sink) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("addr");
        let sink = Sink::default();
        let state = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read);
                    let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                    let mut current = Received {
                        mail_from: String::new(),
                        recipients: Vec::new(),
                        data: String::new(),
                    };
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            current.mail_from = line[10..].trim().to_string();
                            current.recipients.clear();
                            b"250 ok\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            let rcpt = line[8..].trim().trim_matches(['<', '>']).to_string();
                            if rcpt.starts_with("blocked") {
                                b"550 5.1.1 no such user\r\n"
                            } else {
                                current.recipients.push(rcpt);
                                b"250 ok\r\n"
                            }
                        } else if upper.starts_with("DATA") {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            current.data.clear();
                            loop {
                                line.clear();
                                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if line == ".\r\n" || line == ".\n" {
                                    break;
                                }
                                current.data.push_str(&line);
                            }
                            let refuse = {
                                let mut n = state.refuse_next.lock().expect("lock");
                                let refuse = *n > 0;
                                *n = n.saturating_sub(1);
                                refuse
                            };
                            if refuse {
                                b"451 4.3.0 try again later\r\n"
                            } else {
                                state.received.lock().expect("lock").push(current.clone());
                                b"250 queued\r\n"
                            }
                        } else if upper.starts_with("QUIT") {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"250 ok\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, sink)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}
