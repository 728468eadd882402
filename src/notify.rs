//! Callback webhooks: when a contact came with a `callback_url`, its lifecycle events (queued,
//! assigned, completed, abandoned, cancelled, sla_warning, sla_breached) are POSTed there as JSON,
//! signed like intake (`X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`) when a webhook secret is set, and retried with exponential backoff.
//!
//! Routing never waits for a callback: the router task hands events over with `try_send` to a
//! bounded queue; a full queue drops the event (counted and logged) rather than slowing routing.
//! `http://` and `https://` URLs are delivered; `https` checks the receiver's certificate
//! against the Mozilla roots (webpki-roots, built in, so a container needs no CA bundle) plus
//! any CA the operator adds for an internal receiver (`callback_ca`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tracing::warn;

use crate::metrics as m;

/// Events waiting for delivery before new ones are dropped.
const QUEUE: usize = 10_000;
/// Deliveries in flight at once.
const CONCURRENCY: usize = 64;
/// Attempts per event: the first try plus retries after 0.5, 1, 2 and 4 seconds.
const ATTEMPTS: u32 = 5;
/// Time allowed for one attempt (connect, send, answer).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a callback URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackUrlError {
    /// Not a URL at all.
    #[error("callback_url is not a valid absolute URL")]
    Invalid,
    /// A scheme we do not deliver to.
    #[error("callback_url must be http:// or https://")]
    Scheme,
}

/// Checks that a callback URL can be delivered to.
pub fn check_url(url: &str) -> Result<(), CallbackUrlError> {
    let uri: Uri = url.parse().map_err(|_| CallbackUrlError::Invalid)?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(()),
        (Some(_), Some(_)) => Err(CallbackUrlError::Scheme),
        _ => Err(CallbackUrlError::Invalid),
    }
}

/// The contact a callback event is about: every log line of its delivery names it, as every
/// line about a contact does.
#[derive(Clone, Debug)]
pub struct CallbackContact {
    /// The contact's id.
    pub id: u64,
    /// Its queue when the event was sent.
    pub queue: String,
    /// Its channel.
    pub channel: String,
}

struct Delivery {
    url: String,
    contact: CallbackContact,
    body: Bytes,
}

impl Delivery {
    /// The host of the URL, the only part of it fit for logs: the customer chose the URL, and
    /// its path or query may carry a token of theirs (`?key=...`), or user info a password.
    fn host(&self) -> String {
        host_of(&self.url)
    }
}

/// The host of a callback URL (without user info, port, path or query), or a placeholder.
fn host_of(url: &str) -> String {
    url.parse::<Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_owned))
        .unwrap_or_else(|| "(not a URL)".into())
}

/// The sending side, held by the router task.
#[derive(Clone)]
pub struct Callbacks {
    queue: mpsc::Sender<Delivery>,
}

impl Callbacks {
    /// Starts the delivery task. It ends when every `Callbacks` handle is dropped and the queue
    /// is drained.
    pub fn start(
        secret: Option<String>,
        tls: Arc<rustls::ClientConfig>,
    ) -> (Callbacks, tokio::task::JoinHandle<()>) {
        let (queue, mut deliveries) = mpsc::channel::<Delivery>(QUEUE);
        let secret = secret.map(Arc::<str>::from);
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(CONCURRENCY));
            while let Some(delivery) = deliveries.recv().await {
                let permit = slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let secret = secret.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    deliver_with_retries(&delivery, secret.as_deref(), &tls).await;
                    drop(permit);
                });
            }
        });
        (Callbacks { queue }, task)
    }

    /// Queues one event about `contact` for `url`; never waits.
    pub fn send(&self, url: &str, contact: CallbackContact, event: &Value) {
        let delivery = Delivery {
            url: url.to_owned(),
            contact,
            body: Bytes::from(event.to_string()),
        };
        if let Err(full) = self.queue.try_send(delivery) {
            let delivery = full.into_inner();
            let c = &delivery.contact;
            metrics::counter!(m::CALLBACKS, "outcome" => "dropped").increment(1);
            warn!(
                contact = c.id,
                queue = %c.queue,
                channel = %c.channel,
                host = %delivery.host(),
                "callback queue full; event dropped"
            );
        }
    }
}

async fn deliver_with_retries(
    delivery: &Delivery,
    secret: Option<&str>,
    tls: &Arc<rustls::ClientConfig>,
) {
    let mut backoff = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        match tokio::time::timeout(ATTEMPT_TIMEOUT, deliver(delivery, secret, tls)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                metrics::counter!(m::CALLBACKS, "outcome" => "delivered").increment(1);
                return;
            }
            answer => {
                let c = &delivery.contact;
                let (status, error) = match answer {
                    Ok(Ok(status)) => (Some(status), None),
                    Ok(Err(e)) => (None, Some(e)),
                    Err(_) => (None, Some("timed out".to_owned())),
                };
                warn!(
                    contact = c.id,
                    queue = %c.queue,
                    channel = %c.channel,
                    host = %delivery.host(),
                    status,
                    error,
                    attempt,
                    "callback not delivered"
                );
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    metrics::counter!(m::CALLBACKS, "outcome" => "failed").increment(1);
}

/// The TLS settings of https callbacks: the Mozilla roots, plus the PEM certificates of
/// `extra_ca` (an internal CA whose receivers the public roots do not vouch for).
pub fn tls_client(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("callback CA {}: {e}", path.display()))?
        {
            let cert = cert.map_err(|e| format!("callback CA {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("callback CA {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "callback CA {}: no PEM certificate in it",
                path.display()
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One POST; returns the HTTP status.
async fn deliver(
    delivery: &Delivery,
    secret: Option<&str>,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<u16, String> {
    let uri: Uri = delivery.url.parse().map_err(|e| format!("{e}"))?;
    let authority = uri.authority().ok_or("no host")?.clone();
    let https = uri.scheme_str() == Some("https");
    // `Uri::host` keeps an IPv6 address's brackets; TCP and TLS want it bare.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let mut sender = if https {
        let name = rustls_pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{host}: {e}"))?;
        let stream = TlsConnector::from(tls.clone())
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        handshake(stream).await?
    } else {
        handshake(stream).await?
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "switchboard");
    if let Some(secret) = secret {
        request = request.header("X-Switchboard-Signature", sign(secret, &delivery.body));
    }
    let request = request
        .body(Full::new(delivery.body.clone()))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Ok(status)
}

/// An HTTP/1.1 client connection over `io`, its connection task spawned.
async fn handshake<S>(io: S) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as intake checks it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let t = crate::daemon::unix_ms() / 1000;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_name_a_callback_receiver_by_host_alone() {
        assert_eq!(
            host_of("http://crm:pa55@hooks.example.com:8080/t/SECRET?key=SECRET"),
            "hooks.example.com"
        );
        assert_eq!(host_of("http://[::1]/x?token=SECRET"), "[::1]");
        assert_eq!(host_of("not a url SECRET"), "(not a URL)");
    }

    #[test]
    fn only_absolute_http_and_https_urls_are_accepted() {
        assert_eq!(check_url("http://crm.example:8080/hooks/sb?x=1"), Ok(()));
        assert_eq!(check_url("https://crm.example/hooks"), Ok(()));
        assert_eq!(
            check_url("ftp://crm.example/hooks"),
            Err(CallbackUrlError::Scheme)
        );
        assert_eq!(check_url("/relative"), Err(CallbackUrlError::Invalid));
        assert_eq!(check_url("not a url"), Err(CallbackUrlError::Invalid));
    }

    #[test]
    fn a_callback_ca_file_must_hold_certificates() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
        assert!(tls_client(None).is_ok());
        assert!(tls_client(Some(&fixtures.join("ca.pem"))).is_ok());
        let missing = tls_client(Some(&fixtures.join("no-such.pem"))).expect_err("missing");
        assert!(missing.contains("no-such.pem"), "{missing}");
        let keyless = tls_client(Some(&fixtures.join("README.md"))).expect_err("no PEM");
        assert!(keyless.contains("no PEM certificate"), "{keyless}");
    }

    #[test]
    fn a_callback_signature_verifies_like_intake() {
        let header = sign("whsec", b"{\"event\":\"queued\"}");
        let now = (crate::daemon::unix_ms() / 1000) as i64;
        assert!(
            crate::http::verify_signature("whsec", Some(&header), b"{\"event\":\"queued\"}", now)
                .is_ok()
        );
    }
}
