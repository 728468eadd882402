//! Channel adapters: outside input becomes contacts for the intake, and replies go back out the
//! way they came.
//!
//! - [`email`]: SMTP/LMTP listeners and `POST /v1/email/inbound`, parsing, threading, and
//!   outgoing mail (acknowledgements, agent replies) through lettre.

pub mod email;
