//! Arbitrary bytes through the email parse path: `parse` must never panic, and whatever it
//! returns must serialize (it goes to the journal as JSON) and give its subject to
//! `contact_token` (threading reads it) without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::channels::email::parse::{contact_token, parse};

fuzz_target!(|data: &[u8]| {
    // The first byte also picks how the message arrived: over HTTP (no envelope), over SMTP
    // from a sender, or as a bounce (null sender). It is not cut off, so the seeds (plain .eml
    // files) are parsed whole.
    let envelope_sender = match data.first().map(|b| b % 3) {
        None | Some(0) => None,
        Some(1) => Some("customer@example.com"),
        Some(_) => Some(""),
    };
    if let Ok(email) = parse(data, envelope_sender) {
        serde_json::to_vec(&email).expect("a parsed message serializes to JSON");
        if let Some(subject) = &email.subject {
            let _ = contact_token(subject);
        }
    }
});
