//! Email: inbound over SMTP/LMTP and raw MIME, threading into open contacts, and outbound mail.

pub mod smtp;
