//! One inbound message, parsed by mail-parser into what routing and agents need.
//!
//! Parsing is best effort and never fails on a message that has any bytes at all: a malformed
//! header gives `None` for that field, not an error, because the raw message is kept beside the
//! parse (see the journal's `messages` table) and nothing may be lost to a parser's opinion.
//! Only an empty input is refused.

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};
use serde::{Deserialize, Serialize};

/// Longest body text kept in the parse (the raw message keeps all of it).
pub const MAX_TEXT: usize = 256 * 1024;

/// A mailbox: display name and address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// Display name, decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The address as written.
    pub address: String,
}

/// An attachment, described (its bytes stay in the raw message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// File name, if the sender gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// MIME type, e.g. "application/pdf".
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
}

/// What the message says about itself that decides whether we may answer it automatically
/// (RFC 3834): automatic replies to automatic mail make loops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Automation {
    /// `Auto-Submitted` other than "no".
    pub auto_submitted: bool,
    /// `Precedence: bulk`, `list` or `junk`, or a `List-Id` header.
    pub bulk: bool,
    /// A bounce: null envelope sender, or from MAILER-DAEMON / postmaster.
    pub bounce: bool,
}

impl Automation {
    /// True when no automatic reply may be sent to this message.
    pub fn no_auto_reply(&self) -> bool {
        self.auto_submitted || self.bulk || self.bounce
    }
}

/// The parts of an inbound message that routing, threading and agents use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundEmail {
    /// `From`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Mailbox>,
    /// `Reply-To`, where answers go when present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<Mailbox>,
    /// `To`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<Mailbox>,
    /// `Cc`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<Mailbox>,
    /// `Subject`, decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `Message-ID` without angle brackets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// `In-Reply-To` ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_reply_to: Vec<String>,
    /// `References` ids, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// `Date` as RFC 3339, when it parses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The text body: the first text part, or the first HTML part converted to text.
    pub text: String,
    /// True when `text` was cut at [`MAX_TEXT`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub text_truncated: bool,
    /// Attachments, described.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Loop and noise signals.
    pub automation: Automation,
}

impl InboundEmail {
    /// Every message id this message names as its ancestors: In-Reply-To first, then
    /// References newest first (the likeliest to be ours come first).
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.in_reply_to
            .iter()
            .chain(self.references.iter().rev())
            .map(String::as_str)
    }

    /// The address an answer goes to: Reply-To, else From.
    pub fn reply_address(&self) -> Option<&Mailbox> {
        self.reply_to.first().or(self.from.as_ref())
    }
}

/// Why a message could not be parsed at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing was sent.
    #[error("the message is empty")]
    Empty,
}

/// Parses a raw RFC 5322 message. `envelope_sender` is the SMTP `MAIL FROM` (`Some("")` for the
/// null sender of a bounce), when the message came over SMTP.
pub fn parse(raw: &[u8], envelope_sender: Option<&str>) -> Result<InboundEmail, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let Some(message) = MessageParser::default().parse(raw) else {
        // mail-parser gives up only on input with no header block at all; keep it as a
        // message with its bytes as text rather than refusing what a sender handed us.
        let text = String::from_utf8_lossy(raw);
        let (text, text_truncated) = cut(&text);
        return Ok(InboundEmail {
            text,
            text_truncated,
            automation: automation_of(None, None, false, envelope_sender),
            ..InboundEmail::default()
        });
    };
    let from = message.from().and_then(first_mailbox);
    let (text, text_truncated) = match message.body_text(0) {
        Some(text) => cut(&text),
        None => (String::new(), false),
    };
    let attachments = message
        .attachments()
        .map(|part| Attachment {
            name: part.attachment_name().map(str::to_owned),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_ascii_lowercase(),
            size: part.len(),
        })
        .collect();
    let header_text = |name: &str| {
        message
            .header(name)
            .and_then(|v| v.as_text())
            .map(|s| s.trim().to_ascii_lowercase())
    };
    let auto_submitted = header_text("Auto-Submitted").is_some_and(|v| v != "no");
    let precedence = header_text("Precedence");
    let list_id = message.header("List-Id").is_some();
    let bulk = list_id
        || precedence
            .as_deref()
            .is_some_and(|p| matches!(p, "bulk" | "list" | "junk"));
    Ok(InboundEmail {
        automation: automation_of(from.as_ref(), Some(auto_submitted), bulk, envelope_sender),
        from,
        reply_to: mailboxes(message.reply_to()),
        to: mailboxes(message.to()),
        cc: mailboxes(message.cc()),
        subject: message.subject().map(|s| s.trim().to_owned()),
        message_id: message.message_id().map(clean_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        date: message.date().map(|d| d.to_rfc3339()),
        text,
        text_truncated,
        attachments,
    })
}

fn automation_of(
    from: Option<&Mailbox>,
    auto_submitted: Option<bool>,
    bulk: bool,
    envelope_sender: Option<&str>,
) -> Automation {
    let daemon_sender = from.is_some_and(|m| {
        let local = m.address.split('@').next().unwrap_or("");
        local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
    });
    Automation {
        auto_submitted: auto_submitted.unwrap_or(false),
        bulk,
        bounce: envelope_sender == Some("") || daemon_sender,
    }
}

/// Cuts text at [`MAX_TEXT`] on a character boundary.
fn cut(text: &str) -> (String, bool) {
    if text.len() <= MAX_TEXT {
        return (text.to_owned(), false);
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}

fn first_mailbox(address: &Address<'_>) -> Option<Mailbox> {
    address.iter().find_map(|a| {
        Some(Mailbox {
            name: a
                .name()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty()),
            address: a.address()?.trim().to_owned(),
        })
    })
}

fn mailboxes(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(address) = address else {
        return Vec::new();
    };
    address
        .iter()
        .filter_map(|a| {
            Some(Mailbox {
                name: a
                    .name()
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
                address: a.address()?.trim().to_owned(),
            })
        })
        .collect()
}

/// Message ids without angle brackets or surrounding space (mail-parser usually strips them;
/// malformed headers may keep them).
fn clean_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![clean_id(id)],
        HeaderValue::TextList(list) => list.iter().map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|id| !id.is_empty())
    .collect()
}

/// The contact token `[#<id>]` in a subject, as our replies and acknowledgements write it.
pub fn contact_token(subject: &str) -> Option<u64> {
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        let digits: &str = &after[..after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len())];
        if !digits.is_empty()
            && after[digits.len()..].starts_with(']')
            && let Ok(id) = digits.parse()
        {
            return Some(id);
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_message_gives_its_headers_and_text() {
        let raw = b"From: Ada Lovelace <ada@example.com>\r\n\
To: support@example.com\r\n\
Subject: Refund please\r\n\
Message-ID: <m1@example.com>\r\n\
In-Reply-To: <prev@example.com>\r\n\
References: <root@example.com> <prev@example.com>\r\n\
Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\
\r\n\
I was charged twice.\r\n";
        let email = parse(raw, Some("ada@example.com")).expect("parses");
        assert_eq!(
            email.from.as_ref().map(|m| m.address.as_str()),
            Some("ada@example.com")
        );
        assert_eq!(
            email.from.as_ref().and_then(|m| m.name.as_deref()),
            Some("Ada Lovelace")
        );
        assert_eq!(email.subject.as_deref(), Some("Refund please"));
        assert_eq!(email.message_id.as_deref(), Some("m1@example.com"));
        assert_eq!(email.in_reply_to, ["prev@example.com"]);
        assert_eq!(email.references, ["root@example.com", "prev@example.com"]);
        assert_eq!(
            email.ancestors().collect::<Vec<_>>(),
            ["prev@example.com", "prev@example.com", "root@example.com"]
        );
        assert_eq!(email.date.as_deref(), Some("2026-11-29T10:00:00Z"));
        assert_eq!(email.text.trim(), "I was charged twice.");
        assert!(!email.automation.no_auto_reply());
    }

    #[test]
    fn automatic_mail_is_recognised() {
        let cases: [(&[u8], Option<&str>); 5] = [
            (
                b"From: a@x.org\r\nAuto-Submitted: auto-replied\r\n\r\nout of office\r\n",
                None,
            ),
            (
                b"From: a@x.org\r\nPrecedence: bulk\r\n\r\nnewsletter\r\n",
                None,
            ),
            (
                b"From: a@x.org\r\nList-Id: <news.x.org>\r\n\r\nlist\r\n",
                None,
            ),
            (b"From: MAILER-DAEMON@x.org\r\n\r\nundeliverable\r\n", None),
            (b"From: a@x.org\r\n\r\nbounce\r\n", Some("")),
        ];
        for (raw, sender) in cases {
            let email = parse(raw, sender).expect("parses");
            assert!(
                email.automation.no_auto_reply(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let human = parse(
            b"From: a@x.org\r\nAuto-Submitted: no\r\n\r\nhi\r\n",
            Some("a@x.org"),
        )
        .expect("parses");
        assert!(!human.automation.no_auto_reply());
    }

    #[test]
    fn an_empty_message_is_refused_and_garbage_is_kept_as_text() {
        assert_eq!(parse(b"", None), Err(ParseError::Empty));
        assert_eq!(parse(b" \r\n", None), Err(ParseError::Empty));
        let email = parse(b"\x00\xff not a message", None).expect("kept");
        assert!(email.from.is_none());
    }

    #[test]
    fn the_contact_token_is_found_in_a_subject() {
        assert_eq!(contact_token("Re: Refund [#42]"), Some(42));
        assert_eq!(contact_token("[#7] and [#8]"), Some(7));
        assert_eq!(contact_token("Re: [#] [#x1] [#12"), None);
        assert_eq!(contact_token("Re: [# 5] then [#5]"), Some(5));
        assert_eq!(contact_token("no token"), None);
    }
}
