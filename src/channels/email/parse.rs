//! One inbound message, parsed by mail-parser into what routing and agents need.
//!
//! Parsing is best effort and never fails on a message that has any bytes at all: a malformed
//! header gives `None` for that field, not an error, because the raw message is kept beside the
//! parse (see the journal's `messages` table) and nothing may be lost to a parser's opinion.
//! Only an empty input is refused.

use mail_parser::{Addr, Address, HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType};
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
    // mail-parser 0.11 trips a debug assertion on some broken multiparts (found by fuzzing);
    // a message must never be lost to a parser's panic, so it is kept as text instead.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw))
        .ok()
        .flatten();
    let Some(message) = parsed else {
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
    // An HTML-only message: mail-parser's converter breaks lines only at <br> and </p>, so
    // block elements are marked as breaks first ("Name</td><td>Ada" must not read "NameAda").
    let html_only = message.text_part(0).is_some_and(|part| part.is_text_html());
    let text = if html_only {
        message.body_html(0).map(|html| html_to_text(&html).into())
    } else {
        message.body_text(0)
    };
    let (text, text_truncated) = match text {
        Some(text) => cut(&text),
        // No blank line after the headers: mail-parser takes the body for junk headers.
        None => cut(headerless_body(raw).unwrap_or_default()),
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
            size: attachment_size(raw, part),
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
        message_id: message
            .message_id()
            .map(clean_id)
            .filter(|id| !id.is_empty()),
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

/// The body of a message whose sender left out the blank line after the headers: everything
/// from the first line that is neither a header field nor a continuation. `None` when the
/// message has a blank line (then an empty body is really empty) or no such line.
fn headerless_body(raw: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        if content.is_empty() {
            return None;
        }
        let continuation = content.starts_with([' ', '\t']);
        let field = content.split_once(':').is_some_and(|(name, _)| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        });
        if !continuation && !field {
            return Some(&text[offset..]);
        }
        offset += line.len();
    }
    None
}

/// HTML to plain text: block elements end a line, table cells are set apart by a space, then
/// mail-parser's converter (tags dropped, entities decoded, whitespace collapsed).
pub fn html_to_text(html: &str) -> String {
    const BLOCKS: &[&str] = &[
        // Not table, ul or ol: their rows and items already end lines.
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "li",
        "blockquote",
        "pre",
        "section",
        "article",
        "header",
        "footer",
        "address",
        "dt",
        "dd",
        "hr",
    ];
    const CELLS: &[&str] = &["td", "th"];
    let mut marked = String::with_capacity(html.len() + html.len() / 16);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open + 1..open + close];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let closing = tag.starts_with('/');
        marked.push_str(&rest[..open]);
        // The space goes before the closing tag: mail-parser keeps a space that ends a word.
        if CELLS.contains(&name.as_str()) && closing {
            marked.push(' ');
        }
        marked.push_str(&rest[open..open + close + 1]);
        if BLOCKS.contains(&name.as_str()) && (closing || name == "hr") {
            marked.push_str("<br>");
        }
        rest = &rest[open + close + 1..];
    }
    marked.push_str(rest);
    // The converter leaves a space where a line break in the source met a block start.
    let text = mail_parser::decoders::html::html_to_text(&marked);
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.dedup_by(|a, b| a.is_empty() && b.is_empty());
    let mut text = lines.join("\n");
    text.push('\n');
    text.trim_start_matches('\n').to_owned()
}

/// An attachment's size in bytes as the sender attached it. mail-parser converts text parts to
/// UTF-8, so for those the size is taken from the part's raw body, decoded from its transfer
/// encoding; other parts are kept as decoded bytes already.
fn attachment_size(raw: &[u8], part: &MessagePart<'_>) -> usize {
    if !matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
        return part.len();
    }
    let body = raw.get(part.raw_body_offset() as usize..part.raw_end_offset() as usize);
    let Some(body) = body else {
        return part.len();
    };
    let decoded = match part
        .content_transfer_encoding()
        .map(str::to_ascii_lowercase)
    {
        Some(e) if e == "base64" => mail_parser::decoders::base64::base64_decode(body),
        Some(e) if e == "quoted-printable" => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
        }
        _ => Some(body.to_vec()),
    };
    decoded.map_or(part.len(), |bytes| bytes.len())
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

/// One address as a [`Mailbox`]; `None` for a group name without an address.
fn mailbox(addr: &Addr<'_>) -> Option<Mailbox> {
    Some(Mailbox {
        name: addr
            .name()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty()),
        address: addr.address()?.trim().to_owned(),
    })
}

fn first_mailbox(address: &Address<'_>) -> Option<Mailbox> {
    address.iter().find_map(mailbox)
}

fn mailboxes(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    address
        .map(|a| a.iter().filter_map(mailbox).collect())
        .unwrap_or_default()
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
    fn html_blocks_and_table_cells_do_not_run_words_together() {
        let text = html_to_text(
            "<h2>Order</h2><table><tr><td>Name</td><td>Ada</td></tr><tr><td>Total</td>\
             <td>&euro;12</td></tr></table><div>Thanks</div>",
        );
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            lines,
            ["Order", "Name Ada", "Total €12", "Thanks"],
            "{text:?}"
        );
    }

    #[test]
    fn a_multipart_that_trips_mail_parser_is_kept_not_lost() {
        // Found by the fuzz target: mail-parser 0.11.9 panics on it in debug builds.
        let raw = "Content-Type:multipart/\n\tboundary=Apple-Mail=_6B1C3E2A-0F4D-4C8B-9E71-2D5A8F3B7C10\n\n\
--Apple-Mail=_6B1C3E2A-0F4D-4C8B-9E71-2D5A8F3B7C10Content-Type:message/rfc822\n\n\
Content-Type:message/rfc822\n\n\n--Apple-Mail=_6B1C3E2A-0F4D-4C8B-9E71-2D5A8F3B7C10--\n";
        assert!(parse(raw.as_bytes(), None).is_ok());
    }

    #[test]
    fn a_body_without_the_blank_line_after_the_headers_is_kept() {
        let raw = b"From: pat@example.net\r\nSubject: broken\r\nHello, my printer is broken.\r\n";
        let email = parse(raw, None).expect("parses");
        assert_eq!(email.text, "Hello, my printer is broken.\r\n");
        let empty =
            parse(b"From: pat@example.net\r\nSubject: nothing\r\n\r\n", None).expect("parses");
        assert_eq!(empty.text, "");
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
