//! The SMTP and LMTP listeners: sockets, timeouts and STARTTLS around the pure
//! [`smtp::Session`](super::smtp::Session).
//!
//! Each connection reads one line at a time into the session and writes what it answers.
//! Replies to pipelined commands are written together once every command already received has
//! been answered (RFC 2920). A message is answered only after [`EmailChannel::deliver`]
//! returns, so the 250 means the journal has it. A client silent for `idle_timeout` between
//! commands, or slower than `data_timeout` to send a message, gets a 421 and is disconnected.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tracing::{debug, info, warn};

use super::smtp::{DataEnd, Mailboxes, Protocol, Reply, Session, SessionConfig, Step};
use super::{Arrival, EmailChannel, EmailError};
use crate::daemon::{Shared, unix_ms};
use crate::metrics as m;

/// Most connections served at once per listener; more wait in the accept backlog.
const MAX_CONNECTIONS: usize = 512;
/// Longest command line read (RFC 5321 allows 512 octets; ESMTP parameters need a little more).
const MAX_COMMAND_LINE: usize = 4096;
/// Most connections at once from one remote address, so one host cannot take every slot (an
/// MTA's LMTP client opens about 20 by default).
const MAX_PER_ADDRESS: usize = 32;
/// Most recipients per transaction (RFC 5321 asks servers to take at least 100).
const MAX_RECIPIENTS: usize = 100;

/// Loads a PEM certificate chain and private key for STARTTLS.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key from {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not make a TLS identity: {e}"))?;
    Ok(Arc::new(config))
}

/// Binds `addr` and serves SMTP or LMTP on it until `stop`; returns the bound address and the
/// accept task (which waits for its connections when stopping).
pub async fn start(
    shared: Arc<Shared>,
    addr: SocketAddr,
    protocol: Protocol,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let name = match protocol {
        Protocol::Smtp => "SMTP",
        Protocol::Lmtp => "LMTP",
    };
    info!(addr = %bound, starttls = tls.is_some(), "listening for email ({name})");
    let task = tokio::spawn(accept_loop(shared, listener, protocol, tls, stop));
    Ok((bound, task))
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    protocol: Protocol,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address: Arc<dashmap::DashMap<std::net::IpAddr, usize>> = Arc::default();
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving who is connected.
                    warn!(error = %e, "cannot accept an email connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        };
        // Replies are already batched per pipelined group (one flush), so Nagle's algorithm
        // would only add a delayed-ACK stall to every transaction.
        let _ = stream.set_nodelay(true);
        let ip = peer.ip();
        let admitted = {
            let mut count = per_address.entry(ip).or_insert(0);
            *count += 1;
            *count <= MAX_PER_ADDRESS
        };
        let shared = shared.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        let per_address = per_address.clone();
        connections.spawn(async move {
            let _permit = permit;
            if admitted {
                if let Err(e) = serve(shared, stream, protocol, tls, stop).await {
                    debug!(%peer, error = %e, "email connection ended with an error");
                }
            } else {
                metrics::counter!(m::SMTP_REJECTED, "reason" => "too_many_connections")
                    .increment(1);
                let mut stream = stream;
                let reply = Reply::new(421, "4.7.0 Too many connections from your address");
                let _ = stream.write_all(&reply.to_bytes()).await;
            }
            if let Some(mut count) = per_address.get_mut(&ip) {
                *count = count.saturating_sub(1);
            }
            per_address.remove_if(&ip, |_, count| *count == 0);
        });
        // Reap finished connections so the set does not grow with the daemon's age.
        while connections.try_join_next().is_some() {}
    }
    // Connections finish their current transaction: a message being committed is answered.
    while connections.join_next().await.is_some() {}
}

/// A byte stream the session can run over: plain TCP, or TLS after STARTTLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How one conversation over one stream ended.
enum Ended {
    /// Closed (QUIT, error, timeout, client gone).
    Closed,
    /// The client asked for STARTTLS and was told to go ahead.
    StartTls,
}

async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    protocol: Protocol,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let config = &shared.email.config;
    let mut session = Session::new(SessionConfig {
        protocol,
        hostname: config.hostname.clone(),
        max_message_size: config.max_message_size,
        max_recipients: MAX_RECIPIENTS,
        starttls: tls.is_some(),
    });
    let mut reader = BufReader::new(Box::new(stream) as Box<dyn Stream>);
    write(&mut reader, &session.greeting()).await?;
    reader.get_mut().flush().await?;
    loop {
        match converse(&shared, &mut session, &mut reader, stop.clone()).await? {
            Ended::Closed => return Ok(()),
            Ended::StartTls => {
                let Some(tls) = &tls else { return Ok(()) };
                // Anything the client pipelined after STARTTLS is discarded (RFC 3207 §4.2).
                let stream = reader.into_inner();
                // A client that never finishes the handshake must not hold its slot forever.
                let idle = shared.email.config.idle_timeout;
                let handshake = TlsAcceptor::from(tls.clone()).accept(stream);
                let stream = tokio::time::timeout(idle, handshake).await.map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
                session.tls_started();
                reader = BufReader::new(Box::new(stream) as Box<dyn Stream>);
            }
        }
    }
}

/// Runs commands until the connection ends or switches to TLS.
async fn converse(
    shared: &Shared,
    session: &mut Session,
    reader: &mut BufReader<Box<dyn Stream>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<Ended> {
    let channel = &shared.email;
    let (idle, data_timeout) = (channel.config.idle_timeout, channel.config.data_timeout);
    let mut line = Vec::with_capacity(512);
    loop {
        line.clear();
        let read = tokio::select! {
            read = tokio::time::timeout(idle, read_line(reader, &mut line, MAX_COMMAND_LINE)) => read,
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                write(reader, &Reply::new(421, "4.3.2 Service shutting down, try again later")).await?;
                reader.get_mut().flush().await?;
                return Ok(Ended::Closed);
            }
        };
        let Ok(read) = read else {
            metrics::counter!(m::SMTP_REJECTED, "reason" => "timeout").increment(1);
            write(reader, &session.idle_timeout_reply()).await?;
            reader.get_mut().flush().await?;
            return Ok(Ended::Closed);
        };
        if read? == 0 {
            return Ok(Ended::Closed); // Client went away.
        }
        let policy = Policy {
            channel,
            now: unix_ms(),
        };
        match session.command(&line, &policy) {
            Step::Reply(reply) => {
                // Refusals by the mailbox policy (550, 450) are counted where they are made.
                match reply.code {
                    500..=504 | 555 => {
                        metrics::counter!(m::SMTP_REJECTED, "reason" => "protocol").increment(1)
                    }
                    552 => {
                        metrics::counter!(m::SMTP_REJECTED, "reason" => "too_large").increment(1)
                    }
                    _ => {}
                }
                write(reader, &reply).await?;
                // Pipelined commands already received are answered together.
                if reader.buffer().is_empty() {
                    reader.get_mut().flush().await?;
                }
            }
            Step::Close(reply) => {
                write(reader, &reply).await?;
                reader.get_mut().flush().await?;
                return Ok(Ended::Closed);
            }
            Step::StartTls(reply) => {
                write(reader, &reply).await?;
                reader.get_mut().flush().await?;
                return Ok(Ended::StartTls);
            }
            Step::StartData(reply) => {
                write(reader, &reply).await?;
                reader.get_mut().flush().await?;
                let deadline = Instant::now() + data_timeout;
                match read_message(session, reader, deadline, channel.config.max_message_size)
                    .await?
                {
                    Some(end) => {
                        for reply in finish_message(shared, session, end).await {
                            write(reader, &reply).await?;
                        }
                        if reader.buffer().is_empty() {
                            reader.get_mut().flush().await?;
                        }
                    }
                    None => {
                        metrics::counter!(m::SMTP_REJECTED, "reason" => "timeout").increment(1);
                        write(reader, &session.idle_timeout_reply()).await?;
                        reader.get_mut().flush().await?;
                        return Ok(Ended::Closed);
                    }
                }
            }
        }
    }
}

/// Feeds body lines to the session until the final dot. `None` on timeout; an error if the
/// client goes away mid-message (nothing was acknowledged, so nothing is lost: the client
/// keeps the message and retries).
async fn read_message(
    session: &mut Session,
    reader: &mut BufReader<Box<dyn Stream>>,
    deadline: Instant,
    max_message_size: usize,
) -> std::io::Result<Option<DataEnd>> {
    let mut line = Vec::with_capacity(1024);
    // A line longer than the largest message is cut (and the message refused with 552 by the
    // session, which counts its size), so a client cannot make us buffer without bound.
    let max_line = max_message_size.saturating_add(3);
    loop {
        line.clear();
        let read = tokio::time::timeout_at(deadline, read_line(reader, &mut line, max_line)).await;
        let Ok(read) = read else { return Ok(None) };
        if read? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in the middle of a message",
            ));
        }
        if let Some(end) = session.data_line(&line) {
            return Ok(Some(end));
        }
    }
}

/// Commits a received message and returns the replies for it.
async fn finish_message(shared: &Shared, session: &mut Session, end: DataEnd) -> Vec<Reply> {
    let (envelope, message) = match end {
        DataEnd::Message { envelope, message } => (envelope, message),
        DataEnd::TooLarge(reply) => {
            metrics::counter!(m::SMTP_REJECTED, "reason" => "too_large").increment(1);
            // One reply per recipient in LMTP, one in SMTP.
            return session.message_failed(reply);
        }
    };
    let arrival = Arrival {
        mail_from: Some(envelope.mail_from.clone()),
        recipients: envelope.recipients.clone(),
    };
    match shared.email.deliver(shared, message, arrival).await {
        Ok(delivered) => session.message_committed(&format!(
            "contact {} ({})",
            delivered.contact(),
            delivered.as_str()
        )),
        Err(e) => {
            let (reason, reply) = refusal(&e);
            metrics::counter!(m::SMTP_REJECTED, "reason" => reason).increment(1);
            warn!(error = %e, from = %envelope.mail_from, "email not accepted");
            session.message_failed(reply)
        }
    }
}

/// The SMTP answer to a message that could not be taken.
fn refusal(e: &EmailError) -> (&'static str, Reply) {
    match e {
        EmailError::Parse(_) => ("protocol", Reply::new(554, "5.6.0 The message is empty")),
        EmailError::UnknownMailbox(_) => (
            "unknown_mailbox",
            Reply::new(550, "5.1.1 No recipient is a mailbox here"),
        ),
        EmailError::RateLimited(_) => (
            "rate_limited",
            Reply::new(
                450,
                "4.7.1 Too many messages from this sender, try again later",
            ),
        ),
        EmailError::Journal(_) => (
            "journal",
            Reply::new(451, "4.3.0 Cannot store the message now, try again later"),
        ),
        EmailError::OverCapacity(_) => (
            "over_capacity",
            Reply::new(452, "4.3.1 Too many open contacts, try again later"),
        ),
    }
}

/// Recipients and senders as the `[email]` configuration decides them.
struct Policy<'a> {
    channel: &'a EmailChannel,
    now: u64,
}

impl Mailboxes for Policy<'_> {
    fn check_recipient(&self, address: &str) -> Result<(), Reply> {
        match self.channel.config.queue_for(address) {
            Some(_) => Ok(()),
            None => {
                metrics::counter!(m::SMTP_REJECTED, "reason" => "unknown_mailbox").increment(1);
                Err(Reply::new(
                    550,
                    format!("5.1.1 <{address}>: no such mailbox here"),
                ))
            }
        }
    }

    fn check_sender(&self, address: &str) -> Result<(), Reply> {
        if self.channel.admit_sender(address, self.now) {
            Ok(())
        } else {
            metrics::counter!(m::SMTP_REJECTED, "reason" => "rate_limited").increment(1);
            Err(Reply::new(
                450,
                format!("4.7.1 Too many messages from <{address}>, try again later"),
            ))
        }
    }
}

async fn write(reader: &mut BufReader<Box<dyn Stream>>, reply: &Reply) -> std::io::Result<()> {
    reader.get_mut().write_all(&reply.to_bytes()).await
}

/// Reads one line (through its `\n`) into `line`, keeping at most `max` bytes of it: the rest
/// of an overlong line is read and dropped. Returns the bytes read from the stream (0 at end).
async fn read_line(
    reader: &mut BufReader<Box<dyn Stream>>,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        reader.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
    }
}
