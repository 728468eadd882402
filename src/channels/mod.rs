//! Channel adapters: outside input becomes contacts for the intake, and replies go back out the
//! way they came.
//!
//! - [`email`]: SMTP/LMTP listeners and `POST /v1/email/inbound`, parsing, threading, and
//!   outgoing mail (acknowledgements, agent replies) through lettre.
//! - [`chat`]: the customer chat websocket, with its menu, live position and survey.

pub mod chat;
pub mod email;

use std::sync::Arc;

use crate::daemon::{Command, Shared};
use crate::journal::ContactRecord;

/// Adds a later customer message to the open contact's body, so an agent offered it later
/// sees everything the customer wrote, not only the first message.
pub(crate) fn append_to_body(shared: &Shared, contact: u64, text: &str) {
    let Some(mut entry) = shared.contacts.get_mut(&contact) else {
        return;
    };
    let mut record = (**entry).clone();
    if let Some(body) = record.payload.get_mut("body") {
        let joined = match body.as_str() {
            Some(before) if !before.is_empty() => format!("{before}\n\n{text}"),
            _ => text.to_owned(),
        };
        *body = serde_json::Value::String(joined);
    }
    *entry = Arc::new(record);
}

/// Hands a journaled contact to the router: every intake (webhook, email, chat) ends here.
/// `Err` when the record names something the routing plan does not know.
pub(crate) async fn route(shared: &Shared, record: ContactRecord) -> Result<(), String> {
    let id = record.id;
    let contact = crate::http::new_contact_from_record(&shared.plan, &record).inspect_err(|e| {
        tracing::warn!(contact = id, error = %e, "journaled contact cannot be routed");
    })?;
    shared.contacts.insert(id, Arc::new(record));
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Durable already: if the router is gone (shutting down) the contact is replayed on start.
    if shared
        .router
        .send(Command::Queue { contact, reply: tx })
        .await
        .is_ok()
        && let Ok(Err(e)) = rx.await
    {
        tracing::warn!(contact = id, error = %e, "router refused a journaled contact");
    }
    Ok(())
}
