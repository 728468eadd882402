//! The server side of SMTP and LMTP as a pure state machine: lines in, replies out.
//!
//! No sockets, no tokio, no clock, in the manner of quinn-proto. The listener reads a line,
//! hands it to [`Session::command`] (or to [`Session::data_line`] between the `354` and the
//! final dot), writes what comes back and does what the [`Step`] says. Which recipients and
//! senders are welcome is the listener's [`Mailboxes`] to decide; committing a message is the
//! listener's job too, and it reports the outcome through [`Session::message_committed`] or
//! [`Session::message_failed`], which give the replies the client is waiting for.
//!
//! Refusals are SMTP replies, not a Rust error type: the client is the only one who acts on them,
//! and the reply code is what it acts on.
//!
//! # The listener's side of the contract
//!
//! - [`Step::Reply`]: write it and keep reading commands.
//! - [`Step::StartData`]: write the `354`, then feed every line to [`Session::data_line`] until it
//!   returns `Some`. [`DataEnd::Message`]: commit the message, then write what
//!   [`Session::message_committed`] or [`Session::message_failed`] returns.
//!   [`DataEnd::TooLarge`]: write `session.message_failed(reply)`, which is the reply once in
//!   SMTP and once per recipient in LMTP (RFC 2033 wants one reply per recipient after DATA).
//! - [`Step::StartTls`]: write the `220`, throw away anything already read past the STARTTLS line
//!   (plaintext pipelined after STARTTLS is the CVE-2011-0411 injection), do the handshake, then
//!   call [`Session::tls_started`]. A command fed before that closes the session with 421.
//! - [`Step::Close`]: write it and close the connection.
//!
//! # Decisions a reader may look for
//!
//! - Line endings: CRLF is the standard, but bare LF is accepted on command and body lines
//!   because scripts and some appliances send it; the stored message always has CRLF. A body
//!   line fed without any ending is taken as a whole line too.
//! - The body ends at a line of exactly `.`, unless it and the line before it end differently:
//!   `\r\n.\r\n` and `\n.\n` end it, the mixed `\n.\r\n` and `\r\n.\n` do not and are kept as
//!   content. Mixed endings are what SMTP smuggling uses to hide a second message with a forged
//!   sender inside the first one; a client that uses one kind of ending never sees the
//!   difference. The listener must therefore pass body lines with their endings. A line fed
//!   without one (a listener that cut an overlong line) matches either kind.
//! - Ten refused commands in a row close the session with 421. Only 5xx refusals count (a 4xx
//!   such as "too many recipients" is normal flow control), and only commands that move a
//!   session forward (HELO/EHLO/LHLO, MAIL, RCPT, DATA, STARTTLS) clear the count, so NOOP
//!   between bad commands does not buy more attempts.
//! - STARTTLS with a MAIL transaction open is refused with 503: a transaction begun in the clear
//!   and finished encrypted means a confused client, and RFC 3207 would discard it anyway.
//! - Addresses are kept as the client wrote them, without angle brackets and source route;
//!   case-folding is for the [`Mailboxes`] to decide.

use std::fmt;

/// The longest command line accepted, line ending included: RFC 5321's 512 octets plus room for
/// ESMTP parameters. The listener can use it to bound its command read buffer.
pub const MAX_COMMAND_LINE: usize = 2048;

/// Refused commands in a row after which the session is closed, so a client probing for
/// mailboxes or speaking the wrong protocol cannot hold a connection forever.
pub const MAX_ERRORS_IN_ROW: u32 = 10;

/// Which dialect a listener speaks: the two differ in greeting verb and in replies after DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RFC 5321 SMTP, for mail from the internet or a relay: the client greets with EHLO or HELO.
    Smtp,
    /// RFC 2033 LMTP, for final delivery from a local MTA: LHLO, and one reply per recipient.
    Lmtp,
}

/// What the listener tells a session about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Which dialect this listener speaks.
    pub protocol: Protocol,
    /// Our name in the greeting and the EHLO reply.
    pub hostname: String,
    /// The largest message in bytes: advertised in SIZE, enforced at MAIL and during DATA.
    pub max_message_size: usize,
    /// The most recipients in one transaction; more get 452 4.5.3 and are sent again later.
    pub max_recipients: usize,
    /// A certificate is configured, so STARTTLS is advertised until TLS is on.
    pub starttls: bool,
}

/// A reply to the client: code, RFC 3463 enhanced status code, and text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code; its first digit is what the client acts on.
    pub code: u16,
    /// The enhanced status code (`5.1.1`), repeated on every line; empty where none is sent
    /// (greeting, EHLO, the 354 before the body).
    pub enhanced: String,
    /// The text, one entry per line of a multi-line reply.
    pub lines: Vec<String>,
}

impl Reply {
    /// A reply from its code and text. An enhanced status code at the start of the text
    /// (`"5.1.1 No such mailbox"`) is kept apart so it repeats on every line; `\n` starts a line.
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        let text = text.into();
        let (enhanced, rest) = split_enhanced(code, &text);
        Reply {
            code,
            enhanced: enhanced.to_owned(),
            lines: rest
                .split('\n')
                .map(|line| line.trim_end_matches('\r').to_owned())
                .collect(),
        }
    }

    /// The bytes to write, in the `250-first\r\n250 last\r\n` multi-line form. CR and LF inside
    /// the text become spaces, so an echoed client string can never forge a reply line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let count = self.lines.len().max(1);
        let mut out = Vec::with_capacity(count * 32);
        for index in 0..count {
            let text = self.lines.get(index).map(String::as_str).unwrap_or("");
            out.extend_from_slice(self.code.to_string().as_bytes());
            let last = index + 1 == count;
            let mut parts = [self.enhanced.as_str(), text]
                .into_iter()
                .filter(|part| !part.is_empty());
            match (last, parts.next()) {
                (true, None) => {}
                (false, None) => out.push(b'-'),
                (_, Some(first)) => {
                    out.push(if last { b' ' } else { b'-' });
                    push_text(&mut out, first);
                    for part in parts {
                        out.push(b' ');
                        push_text(&mut out, part);
                    }
                }
            }
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// A reply with its enhanced status code given apart; every reply the session makes.
    fn status(code: u16, enhanced: &str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: enhanced.to_owned(),
            lines: vec![text.into()],
        }
    }
}

/// One line for logs: the listener traces refusals with it.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.enhanced.is_empty() {
            write!(f, " {}", self.enhanced)?;
        }
        for line in &self.lines {
            write!(f, " {line}")?;
        }
        Ok(())
    }
}

/// Copies reply text, turning line breaks into spaces so the text stays on its reply line.
fn push_text(out: &mut Vec<u8>, text: &str) {
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// Splits `"5.1.1 text"` into the enhanced code and the text, when the code's class matches
/// the reply's (a 550 carries 5.x.x); anything else is all text.
fn split_enhanced(code: u16, text: &str) -> (&str, &str) {
    let (head, rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut fields = head.split('.');
    let well_formed = matches!(
        (fields.next(), fields.next(), fields.next(), fields.next()),
        (Some(class), Some(subject), Some(detail), None)
            if class.len() == 1
                && class.parse::<u16>().ok() == Some(code / 100)
                && [subject, detail]
                    .iter()
                    .all(|f| (1..=3).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
    );
    if well_formed {
        (head, rest)
    } else {
        ("", text)
    }
}

/// Decides recipients and senders for a session: the listener implements it over its config.
pub trait Mailboxes {
    /// Ok if mail for this address is accepted here; otherwise the refusal to send (550 5.1.1
    /// for an unknown mailbox, 450 for a rate limit).
    fn check_recipient(&self, address: &str) -> Result<(), Reply>;
    /// Ok if this sender may send now; otherwise the refusal (a per-sender rate limit: 450
    /// 4.7.1). `address` is "" for the null sender `<>`.
    fn check_sender(&self, address: &str) -> Result<(), Reply>;
}

/// The envelope of one transaction, as the client stated it: threading and replies use it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// The name the client gave in HELO, EHLO or LHLO.
    pub helo: String,
    /// The reverse path without angle brackets; "" for the null sender `<>` (bounces).
    pub mail_from: String,
    /// The accepted recipients, in the order they were accepted.
    pub recipients: Vec<String>,
    /// The message came over TLS.
    pub tls: bool,
}

/// What the caller must do after feeding a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send it and keep reading commands.
    Reply(Reply),
    /// Send it, then close the connection (QUIT, too many errors, a protocol violation).
    Close(Reply),
    /// Send the 354, then feed body lines to [`Session::data_line`] until it returns `Some`.
    StartData(Reply),
    /// Send the 220, do the TLS handshake and call [`Session::tls_started`].
    StartTls(Reply),
}

impl Step {
    /// The reply to send, whatever comes after it: every step starts with one.
    pub fn reply(&self) -> &Reply {
        match self {
            Step::Reply(reply)
            | Step::Close(reply)
            | Step::StartData(reply)
            | Step::StartTls(reply) => reply,
        }
    }
}

/// The end of a DATA body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEnd {
    /// The whole message (dot-unstuffed, CRLF line endings) and its envelope; the caller commits
    /// it, then sends what [`Session::message_committed`] or [`Session::message_failed`] returns.
    Message {
        /// Who it is from and for.
        envelope: Envelope,
        /// The message as it will be parsed: headers and body, CRLF line endings.
        message: Vec<u8>,
    },
    /// The body went over `max_message_size` and was dropped (552 5.3.4); the transaction is
    /// reset. Send `message_failed(reply)`: LMTP needs the reply once per recipient.
    TooLarge(Reply),
}

/// One SMTP or LMTP connection's protocol state, from greeting to QUIT.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    /// The name from HELO/EHLO/LHLO; none until the client greets (and again after STARTTLS).
    helo: Option<String>,
    tls: bool,
    /// The open MAIL transaction; moved into the body while DATA is read.
    transaction: Option<Transaction>,
    phase: Phase,
    errors_in_row: u32,
    /// The recipients of the last message handed out, until the caller reports its fate: LMTP
    /// answers once for each of them.
    awaiting_verdict: Option<Vec<String>>,
}

/// A MAIL transaction between MAIL and the end of DATA.
#[derive(Debug)]
struct Transaction {
    mail_from: String,
    recipients: Vec<String>,
    /// RCPT commands seen, accepted or not: DATA after only refused ones is 554, not 503.
    rcpt_attempts: usize,
}

/// What the session expects next from the listener.
#[derive(Debug)]
enum Phase {
    Commands,
    Body(Body),
    /// STARTTLS was accepted; nothing may arrive until the handshake is done.
    TlsHandshake,
    Closed,
}

/// A DATA body being received.
#[derive(Debug)]
struct Body {
    transaction: Transaction,
    message: Vec<u8>,
    /// The body went over the limit: the rest is read and dropped until the final dot.
    too_large: bool,
    /// The previous line's ending; none before the first line.
    last_ending: Option<Ending>,
}

/// How a line ended, which decides whether a lone dot ends the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Crlf,
    Lf,
    /// The caller fed the line without its ending.
    Missing,
}

impl Ending {
    /// Whether two line endings are the two different real ones, CRLF and bare LF.
    fn differs_from(self, other: Ending) -> bool {
        matches!(
            (self, other),
            (Ending::Crlf, Ending::Lf) | (Ending::Lf, Ending::Crlf)
        )
    }
}

impl Session {
    /// A session for a connection that has just been accepted; send [`Session::greeting`] first.
    pub fn new(config: SessionConfig) -> Session {
        Session {
            config,
            helo: None,
            tls: false,
            transaction: None,
            phase: Phase::Commands,
            errors_in_row: 0,
            awaiting_verdict: None,
        }
    }

    /// The 220 greeting the server speaks first.
    pub fn greeting(&self) -> Reply {
        let dialect = match self.config.protocol {
            Protocol::Smtp => "ESMTP",
            Protocol::Lmtp => "LMTP",
        };
        Reply::status(
            220,
            "",
            format!("{} {dialect} Switchboard", self.config.hostname),
        )
    }

    /// Whether the connection is encrypted, for the listener's logs and metrics.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Answers one command line, given with or without its trailing CRLF or LF.
    pub fn command(&mut self, line: &[u8], mailboxes: &dyn Mailboxes) -> Step {
        match self.phase {
            Phase::Commands => {}
            Phase::TlsHandshake => {
                self.phase = Phase::Closed;
                return Step::Close(Reply::status(
                    421,
                    "4.7.0",
                    format!(
                        "{} Error: command sent before the TLS handshake",
                        self.config.hostname
                    ),
                ));
            }
            // Only a listener bug gets here; closing is safer than guessing what the line was.
            Phase::Body(_) | Phase::Closed => {
                self.phase = Phase::Closed;
                return Step::Close(Reply::status(
                    421,
                    "4.3.0",
                    format!("{} Error: session is closing", self.config.hostname),
                ));
            }
        }
        let line = strip_line_ending(line);
        if line.len() + 2 > MAX_COMMAND_LINE {
            return self.refuse(Reply::status(500, "5.5.2", "Error: line too long"));
        }
        let Ok(line) = std::str::from_utf8(line) else {
            return self.refuse(Reply::status(
                500,
                "5.5.2",
                "Error: command is not valid UTF-8",
            ));
        };
        let (verb, args) = match line.split_once(' ') {
            Some((verb, args)) => (verb, args.trim_matches(' ')),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            verb @ ("EHLO" | "HELO" | "LHLO") => self.hello(verb, args),
            "MAIL" => self.mail(args, mailboxes),
            "RCPT" => self.rcpt(args, mailboxes),
            "DATA" => self.data(args),
            "RSET" if !args.is_empty() => self.refuse(Reply::status(501, "5.5.4", "Syntax: RSET")),
            "RSET" => {
                self.transaction = None;
                Step::Reply(Reply::status(250, "2.0.0", "Ok"))
            }
            "NOOP" => Step::Reply(Reply::status(250, "2.0.0", "Ok")),
            "QUIT" => {
                self.phase = Phase::Closed;
                Step::Close(Reply::status(221, "2.0.0", "Bye"))
            }
            "VRFY" if args.is_empty() => {
                self.refuse(Reply::status(501, "5.5.4", "Syntax: VRFY address"))
            }
            // 252 rather than an answer: confirming mailboxes would hand out a list of them.
            "VRFY" => Step::Reply(Reply::status(
                252,
                "2.0.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            "EXPN" => self.refuse(Reply::status(
                502,
                "5.5.1",
                "Error: command not implemented",
            )),
            "STARTTLS" => self.starttls(args),
            "HELP" => Step::Reply(Reply::status(214, "2.0.0", self.help())),
            _ => self.refuse(Reply::status(500, "5.5.2", "Error: command not recognized")),
        }
    }

    /// Takes one body line, with or without its ending; `None` means keep feeding, `Some` ends
    /// the body and resets the transaction. A line fed outside DATA is ignored.
    pub fn data_line(&mut self, line: &[u8]) -> Option<DataEnd> {
        let Phase::Body(body) = &mut self.phase else {
            return None;
        };
        let (content, ending) = split_line_ending(line);
        if content == b"."
            && !body
                .last_ending
                .is_some_and(|last| last.differs_from(ending))
        {
            return Some(self.finish_body());
        }
        body.last_ending = Some(ending);
        if body.too_large {
            return None;
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        let size = body
            .message
            .len()
            .saturating_add(content.len())
            .saturating_add(2);
        if size > self.config.max_message_size {
            // Keep consuming to the final dot, but stop holding what a client may keep sending.
            body.too_large = true;
            body.message = Vec::new();
        } else {
            body.message.extend_from_slice(content);
            body.message.extend_from_slice(b"\r\n");
        }
        None
    }

    /// The replies once the last message is safely stored: one in SMTP, one per recipient in
    /// LMTP, in order. Empty when no message is waiting for a verdict.
    pub fn message_committed(&mut self, contact_note: &str) -> Vec<Reply> {
        let Some(recipients) = self.awaiting_verdict.take() else {
            return Vec::new();
        };
        let ok = if contact_note.is_empty() {
            "Ok".to_owned()
        } else {
            format!("Ok: {contact_note}")
        };
        match self.config.protocol {
            Protocol::Smtp => vec![Reply::status(250, "2.0.0", ok)],
            Protocol::Lmtp => recipients
                .iter()
                .map(|recipient| Reply::status(250, "2.0.0", format!("<{recipient}> {ok}")))
                .collect(),
        }
    }

    /// The replies when the last message could not be stored (or was too large): `reply` once
    /// in SMTP, once per recipient in LMTP. Empty when no message is waiting for a verdict.
    pub fn message_failed(&mut self, reply: Reply) -> Vec<Reply> {
        let Some(recipients) = self.awaiting_verdict.take() else {
            return Vec::new();
        };
        match self.config.protocol {
            Protocol::Smtp => vec![reply],
            Protocol::Lmtp => vec![reply; recipients.len()],
        }
    }

    /// The handshake succeeded: per RFC 3207, forget all the client said before (greeting and
    /// transaction) and stop advertising STARTTLS. Also right for implicit TLS, before greeting.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.transaction = None;
        self.awaiting_verdict = None;
        self.errors_in_row = 0;
        self.phase = Phase::Commands;
    }

    /// The 421 the listener sends before closing an idle connection.
    pub fn idle_timeout_reply(&self) -> Reply {
        Reply::status(
            421,
            "4.4.2",
            format!("{} Error: timeout exceeded", self.config.hostname),
        )
    }

    /// HELO, EHLO and LHLO: learn the client's name, reset any transaction, list extensions.
    fn hello(&mut self, verb: &str, args: &str) -> Step {
        let fits = matches!(
            (self.config.protocol, verb),
            (Protocol::Smtp, "EHLO" | "HELO") | (Protocol::Lmtp, "LHLO")
        );
        if !fits {
            let text = format!("Error: {verb} is not used here; send {}", self.hello_verb());
            return self.refuse(Reply::status(500, "5.5.1", text));
        }
        // The name ends up in the envelope and in logs, so control characters are refused.
        let client = args
            .split(' ')
            .next()
            .filter(|name| !name.is_empty() && !name.chars().any(char::is_control));
        let Some(client) = client else {
            let text = format!("Syntax: {verb} hostname");
            return self.refuse(Reply::status(501, "5.5.4", text));
        };
        self.helo = Some(client.to_owned());
        self.transaction = None;
        self.errors_in_row = 0;
        let greets = format!("{} greets {client}", self.config.hostname);
        if verb == "HELO" {
            return Step::Reply(Reply::status(250, "", greets));
        }
        let mut lines = vec![
            greets,
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.config.max_message_size),
            "8BITMIME".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if self.starttls_offered() {
            lines.push("STARTTLS".to_owned());
        }
        Step::Reply(Reply {
            code: 250,
            enhanced: String::new(),
            lines,
        })
    }

    /// MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME]: opens a transaction.
    fn mail(&mut self, args: &str, mailboxes: &dyn Mailboxes) -> Step {
        if self.helo.is_none() {
            let text = format!("Error: send {} first", self.hello_verb());
            return self.refuse(Reply::status(503, "5.5.1", text));
        }
        if self.transaction.is_some() {
            return self.refuse(Reply::status(503, "5.5.1", "Error: nested MAIL command"));
        }
        let Some(path) = strip_prefix_ignore_case(args, "FROM:") else {
            return self.refuse(Reply::status(501, "5.5.4", "Syntax: MAIL FROM:<address>"));
        };
        let Some((address, params)) = parse_path(path) else {
            return self.refuse(bad_sender());
        };
        if !address.is_empty() && !is_mailbox(&address) {
            return self.refuse(bad_sender());
        }
        let mut declared_size = 0;
        for param in params.split(' ').filter(|param| !param.is_empty()) {
            let (keyword, value) = match param.split_once('=') {
                Some((keyword, value)) => (keyword, Some(value)),
                None => (param, None),
            };
            match keyword.to_ascii_uppercase().as_str() {
                "SIZE" => match value {
                    Some(digits)
                        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        // Only overflow can fail here, and an overflowing size is too large.
                        declared_size = digits.parse::<usize>().unwrap_or(usize::MAX);
                    }
                    _ => {
                        return self.refuse(Reply::status(501, "5.5.4", "Bad SIZE parameter"));
                    }
                },
                "BODY" => match value.map(str::to_ascii_uppercase).as_deref() {
                    Some("7BIT" | "8BITMIME") => {}
                    _ => {
                        return self.refuse(Reply::status(501, "5.5.4", "Bad BODY parameter"));
                    }
                },
                _ => {
                    let text = format!("Unsupported parameter {keyword}");
                    return self.refuse(Reply::status(555, "5.5.4", text));
                }
            }
        }
        if declared_size > self.config.max_message_size {
            return self.refuse(too_large());
        }
        if let Err(refusal) = mailboxes.check_sender(&address) {
            return self.refuse(refusal);
        }
        self.transaction = Some(Transaction {
            mail_from: address,
            recipients: Vec::new(),
            rcpt_attempts: 0,
        });
        self.errors_in_row = 0;
        Step::Reply(Reply::status(250, "2.1.0", "Ok"))
    }

    /// RCPT TO:<address>: adds a recipient the mailboxes accept.
    fn rcpt(&mut self, args: &str, mailboxes: &dyn Mailboxes) -> Step {
        let Some(transaction) = self.transaction.as_mut() else {
            return self.refuse(Reply::status(503, "5.5.1", "Error: need MAIL command"));
        };
        transaction.rcpt_attempts += 1;
        let accepted = transaction.recipients.len();
        let Some(path) = strip_prefix_ignore_case(args, "TO:") else {
            return self.refuse(Reply::status(501, "5.5.4", "Syntax: RCPT TO:<address>"));
        };
        let Some((address, params)) = parse_path(path) else {
            return self.refuse(bad_recipient());
        };
        // RFC 5321 §4.5.1: a bare <postmaster> must be accepted without a domain.
        if !is_mailbox(&address) && !address.eq_ignore_ascii_case("postmaster") {
            return self.refuse(bad_recipient());
        }
        if let Some(param) = params.split(' ').find(|param| !param.is_empty()) {
            let text = format!("Unsupported parameter {param}");
            return self.refuse(Reply::status(555, "5.5.4", text));
        }
        if accepted >= self.config.max_recipients {
            // Not counted as an error: the client is expected to send these in a later transaction.
            return Step::Reply(Reply::status(452, "4.5.3", "Error: too many recipients"));
        }
        if let Err(refusal) = mailboxes.check_recipient(&address) {
            return self.refuse(refusal);
        }
        if let Some(transaction) = self.transaction.as_mut() {
            transaction.recipients.push(address);
        }
        self.errors_in_row = 0;
        Step::Reply(Reply::status(250, "2.1.5", "Ok"))
    }

    /// DATA: starts the body once at least one recipient was accepted.
    fn data(&mut self, args: &str) -> Step {
        if !args.is_empty() {
            return self.refuse(Reply::status(501, "5.5.4", "Syntax: DATA"));
        }
        let Some(transaction) = self.transaction.take() else {
            return self.refuse(Reply::status(503, "5.5.1", "Error: need MAIL command"));
        };
        if transaction.recipients.is_empty() {
            // RFC 2920: a pipelined DATA after only refused RCPTs gets 554, not a sequence error.
            let refusal = if transaction.rcpt_attempts == 0 {
                Reply::status(503, "5.5.1", "Error: need RCPT command")
            } else {
                Reply::status(554, "5.5.1", "Error: no valid recipients")
            };
            self.transaction = Some(transaction);
            return self.refuse(refusal);
        }
        self.phase = Phase::Body(Body {
            transaction,
            message: Vec::new(),
            too_large: false,
            last_ending: None,
        });
        self.errors_in_row = 0;
        Step::StartData(Reply::status(354, "", "End data with <CR><LF>.<CR><LF>"))
    }

    /// STARTTLS: hands the connection to the listener for the handshake.
    fn starttls(&mut self, args: &str) -> Step {
        if !args.is_empty() {
            return self.refuse(Reply::status(501, "5.5.4", "Syntax: STARTTLS"));
        }
        if self.tls {
            return self.refuse(Reply::status(503, "5.5.1", "Error: TLS already active"));
        }
        if !self.config.starttls {
            return Step::Reply(Reply::status(454, "4.7.0", "TLS not available"));
        }
        if self.transaction.is_some() {
            let text = "Error: MAIL transaction in progress";
            return self.refuse(Reply::status(503, "5.5.1", text));
        }
        self.phase = Phase::TlsHandshake;
        self.errors_in_row = 0;
        Step::StartTls(Reply::status(220, "2.0.0", "Ready to start TLS"))
    }

    /// Ends the body: hands out the message or the size refusal, and keeps the recipients for
    /// the replies that follow.
    fn finish_body(&mut self) -> DataEnd {
        let Phase::Body(body) = std::mem::replace(&mut self.phase, Phase::Commands) else {
            unreachable!("finish_body is called only while reading a body");
        };
        let Transaction {
            mail_from,
            recipients,
            ..
        } = body.transaction;
        self.awaiting_verdict = Some(recipients.clone());
        if body.too_large {
            return DataEnd::TooLarge(too_large());
        }
        DataEnd::Message {
            envelope: Envelope {
                helo: self.helo.clone().unwrap_or_default(),
                mail_from,
                recipients,
                tls: self.tls,
            },
            message: body.message,
        }
    }

    /// Sends a refusal, counting 5xx ones towards the limit that closes the session.
    fn refuse(&mut self, reply: Reply) -> Step {
        if reply.code < 500 {
            return Step::Reply(reply);
        }
        self.errors_in_row += 1;
        if self.errors_in_row < MAX_ERRORS_IN_ROW {
            return Step::Reply(reply);
        }
        self.phase = Phase::Closed;
        Step::Close(Reply::status(
            421,
            "4.7.0",
            format!("{} Error: too many errors", self.config.hostname),
        ))
    }

    fn starttls_offered(&self) -> bool {
        self.config.starttls && !self.tls
    }

    fn hello_verb(&self) -> &'static str {
        match self.config.protocol {
            Protocol::Smtp => "EHLO or HELO",
            Protocol::Lmtp => "LHLO",
        }
    }

    fn help(&self) -> String {
        let greet = match self.config.protocol {
            Protocol::Smtp => "EHLO HELO",
            Protocol::Lmtp => "LHLO",
        };
        let starttls = if self.starttls_offered() {
            " STARTTLS"
        } else {
            ""
        };
        format!("Commands: {greet} MAIL RCPT DATA RSET NOOP QUIT VRFY HELP{starttls}")
    }
}

fn bad_sender() -> Reply {
    Reply::status(501, "5.1.7", "Bad sender address syntax")
}

fn bad_recipient() -> Reply {
    Reply::status(501, "5.1.3", "Bad recipient address syntax")
}

fn too_large() -> Reply {
    Reply::status(552, "5.3.4", "Error: message too large")
}

/// A command line without its CRLF, LF or stray CR.
fn strip_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A body line and how it ended. A trailing CR alone counts as CRLF: it is what remains when a
/// listener splits on LF and drops only that.
fn split_line_ending(line: &[u8]) -> (&[u8], Ending) {
    if let Some(content) = line.strip_suffix(b"\r\n") {
        (content, Ending::Crlf)
    } else if let Some(content) = line.strip_suffix(b"\n") {
        (content, Ending::Lf)
    } else if let Some(content) = line.strip_suffix(b"\r") {
        (content, Ending::Crlf)
    } else {
        (line, Ending::Missing)
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Splits `<address> params` (or, leniently, `address params`) into the address without
/// brackets and source route, and the parameters. `None` if it cannot be read.
fn parse_path(path: &str) -> Option<(String, &str)> {
    // Real clients write `MAIL FROM: <a@b>`; RFC 5321 has no space there, but refusing helps no one.
    let path = path.trim_start_matches(' ');
    let (inner, rest) = match path.strip_prefix('<') {
        Some(after) => {
            let end = closing_bracket(after)?;
            (&after[..end], &after[end + 1..])
        }
        None => {
            let end = path.find(' ').unwrap_or(path.len());
            if end == 0 {
                return None;
            }
            path.split_at(end)
        }
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    // A source route (`@relay,@relay:user@host`) is obsolete; RFC 5321 says to ignore it.
    let mailbox = match inner.strip_prefix('@') {
        Some(route) => route.split_once(':')?.1,
        None => inner,
    };
    Some((mailbox.to_owned(), rest))
}

/// Where the `>` closing an address is, skipping any inside a quoted local part.
fn closing_bracket(text: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(index),
            _ => {}
        }
    }
    None
}

/// A plausible `local@domain`: enough to refuse garbage, lenient enough for real mail (quoted
/// local parts, address literals, international names).
fn is_mailbox(address: &str) -> bool {
    if address.chars().any(char::is_control) {
        return false;
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let quoted = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
    let local_ok = !local.is_empty()
        && (quoted
            || !local.contains([
                ' ', '<', '>', '(', ')', ',', ';', ':', '\\', '"', '@', '[', ']',
            ]));
    let literal = domain.len() >= 2 && domain.starts_with('[') && domain.ends_with(']');
    let domain_ok = literal
        || (!domain.is_empty()
            && !domain.starts_with(['.', '-'])
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.'));
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    const MAIL: &str = "MAIL FROM:<ann@example.net>";
    const RCPT: &str = "RCPT TO:<support@example.com>";

    /// A help desk with two mailboxes, which throttles one noisy sender and remembers who asked.
    #[derive(Default)]
    struct Desk {
        senders: RefCell<Vec<String>>,
    }

    impl Mailboxes for Desk {
        fn check_recipient(&self, address: &str) -> Result<(), Reply> {
            let known = ["support@example.com", "billing@example.com"];
            if known
                .iter()
                .any(|mailbox| mailbox.eq_ignore_ascii_case(address))
            {
                return Ok(());
            }
            let text = format!("5.1.1 <{address}>: Recipient address rejected: User unknown");
            Err(Reply::new(550, text))
        }

        fn check_sender(&self, address: &str) -> Result<(), Reply> {
            self.senders.borrow_mut().push(address.to_owned());
            if address == "noisy@example.net" {
                return Err(Reply::new(
                    450,
                    "4.7.1 Error: too many messages, try again later",
                ));
            }
            Ok(())
        }
    }

    fn config(protocol: Protocol) -> SessionConfig {
        SessionConfig {
            protocol,
            hostname: "mx.example.com".to_owned(),
            max_message_size: 1000,
            max_recipients: 100,
            starttls: false,
        }
    }

    fn with_certificate() -> Session {
        Session::new(SessionConfig {
            starttls: true,
            ..config(Protocol::Smtp)
        })
    }

    /// Feeds one command line, as a listener would, with its CRLF.
    fn say(session: &mut Session, line: &str) -> Step {
        session.command(format!("{line}\r\n").as_bytes(), &Desk::default())
    }

    /// Feeds a `" | "`-separated script of commands that must all succeed: a case's setup.
    fn prepare(session: &mut Session, script: &str) {
        for line in script.split(" | ").filter(|line| !line.is_empty()) {
            let step = say(session, line);
            assert!(
                step.reply().code < 400,
                "{line:?} was refused: {}",
                step.reply()
            );
        }
    }

    /// A session that has greeted, asked for support@example.com and sent DATA.
    fn in_body(protocol: Protocol) -> Session {
        let mut session = Session::new(config(protocol));
        let hello = match protocol {
            Protocol::Smtp => "EHLO client.example.net",
            Protocol::Lmtp => "LHLO client.example.net",
        };
        prepare(&mut session, &format!("{hello} | {MAIL} | {RCPT} | DATA"));
        session
    }

    /// Feeds body lines until the body ends.
    fn body(session: &mut Session, lines: &[&str]) -> Option<DataEnd> {
        lines
            .iter()
            .find_map(|line| session.data_line(line.as_bytes()))
    }

    fn message(end: Option<DataEnd>) -> (Envelope, Vec<u8>) {
        match end {
            Some(DataEnd::Message { envelope, message }) => (envelope, message),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn wire(reply: &Reply) -> String {
        String::from_utf8(reply.to_bytes()).expect("replies are UTF-8")
    }

    /// The code and enhanced code, as a client's log shows them: "503 5.5.1".
    fn answer(step: &Step) -> String {
        let reply = step.reply();
        format!("{} {}", reply.code, reply.enhanced)
            .trim_end()
            .to_owned()
    }

    #[test]
    fn a_full_smtp_transaction_hands_out_the_message_and_its_envelope() {
        let mut session = Session::new(config(Protocol::Smtp));
        assert_eq!(
            wire(&session.greeting()),
            "220 mx.example.com ESMTP Switchboard\r\n"
        );
        prepare(
            &mut session,
            &format!("EHLO client.example.net | {MAIL} | {RCPT}"),
        );
        let step = say(&mut session, "DATA");
        assert!(matches!(step, Step::StartData(_)));
        assert_eq!(
            wire(step.reply()),
            "354 End data with <CR><LF>.<CR><LF>\r\n"
        );

        let lines = [
            "Subject: refund\r\n",
            "\r\n",
            "Where is my refund?\r\n",
            ".\r\n",
        ];
        let (envelope, message) = message(body(&mut session, &lines));
        let expected = Envelope {
            helo: "client.example.net".to_owned(),
            mail_from: "ann@example.net".to_owned(),
            recipients: vec!["support@example.com".to_owned()],
            tls: false,
        };
        assert_eq!(envelope, expected);
        assert_eq!(message, b"Subject: refund\r\n\r\nWhere is my refund?\r\n");

        let replies: Vec<String> = session
            .message_committed("contact 42")
            .iter()
            .map(wire)
            .collect();
        assert_eq!(replies, ["250 2.0.0 Ok: contact 42\r\n"]);
        // Ready for the next message on the same connection, greeting kept.
        prepare(&mut session, MAIL);
        let quit = say(&mut session, "QUIT");
        assert!(matches!(quit, Step::Close(_)));
        assert_eq!(wire(quit.reply()), "221 2.0.0 Bye\r\n");
    }

    #[test]
    fn lmtp_answers_once_per_accepted_recipient_after_the_message() {
        let mut session = Session::new(config(Protocol::Lmtp));
        assert_eq!(
            wire(&session.greeting()),
            "220 mx.example.com LMTP Switchboard\r\n"
        );
        prepare(
            &mut session,
            &format!("LHLO mta.example.com | {MAIL} | {RCPT}"),
        );
        assert_eq!(
            answer(&say(&mut session, "RCPT TO:<nobody@example.com>")),
            "550 5.1.1"
        );
        prepare(&mut session, "RCPT TO:<Billing@Example.com> | DATA");

        let (envelope, _) = message(body(
            &mut session,
            &["Subject: hi\r\n", "\r\n", "hi\r\n", ".\r\n"],
        ));
        assert_eq!(
            envelope.recipients,
            ["support@example.com", "Billing@Example.com"]
        );

        let replies: Vec<String> = session
            .message_committed("contact 7")
            .iter()
            .map(wire)
            .collect();
        let expected = [
            "250 2.0.0 <support@example.com> Ok: contact 7\r\n",
            "250 2.0.0 <Billing@Example.com> Ok: contact 7\r\n",
        ];
        assert_eq!(replies, expected);
        assert!(
            session.message_committed("again").is_empty(),
            "one verdict per message"
        );
    }

    #[test]
    fn a_failed_commit_is_reported_once_in_smtp_and_once_per_recipient_in_lmtp() {
        let failure = Reply::new(451, "4.3.0 Error: queue file write error");
        for (protocol, expected) in [(Protocol::Smtp, 1), (Protocol::Lmtp, 2)] {
            let mut session = Session::new(config(protocol));
            let hello = if protocol == Protocol::Smtp {
                "EHLO c"
            } else {
                "LHLO c"
            };
            let script =
                format!("{hello} | {MAIL} | {RCPT} | RCPT TO:<billing@example.com> | DATA");
            prepare(&mut session, &script);
            message(body(&mut session, &["hi\r\n", ".\r\n"]));
            let replies = session.message_failed(failure.clone());
            assert_eq!(replies, vec![failure.clone(); expected], "{protocol:?}");
            prepare(&mut session, MAIL);
        }
    }

    #[test]
    fn body_lines_are_dot_unstuffed_and_end_at_a_lone_dot_with_either_line_ending() {
        let expected: &[u8] = b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\nend.\r\n";
        let lines = [
            "Subject: dots",
            "",
            "..leading dot",
            "...two dots",
            "end.",
            ".",
        ];
        for (name, ending) in [("CRLF", "\r\n"), ("bare LF", "\n"), ("no ending", "")] {
            let mut session = in_body(Protocol::Smtp);
            let lines: Vec<String> = lines.iter().map(|line| format!("{line}{ending}")).collect();
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let (_, message) = message(body(&mut session, &lines));
            assert_eq!(
                message,
                expected,
                "{name}: {}",
                String::from_utf8_lossy(&message)
            );
        }
    }

    #[test]
    fn a_dot_with_mixed_line_endings_does_not_end_the_body_so_nothing_can_be_smuggled() {
        let mut session = in_body(Protocol::Smtp);
        // `\r\n.\n` and `\n.\r\n` are content; only the `\r\n.\r\n` at the end closes the body.
        let smuggled = [
            "hello\r\n",
            ".\n",
            "MAIL FROM:<ceo@example.com>\r\n",
            "\n",
            ".\r\n",
        ];
        for line in smuggled {
            assert_eq!(
                session.data_line(line.as_bytes()),
                None,
                "{line:?} ended the body"
            );
        }
        let (_, message) = message(session.data_line(b".\r\n"));
        assert_eq!(
            message,
            b"hello\r\n\r\nMAIL FROM:<ceo@example.com>\r\n\r\n\r\n"
        );
    }

    #[test]
    fn a_dot_after_a_line_cut_without_its_ending_still_ends_the_body() {
        let mut session = in_body(Protocol::Smtp);
        assert_eq!(session.data_line(&[b'x'; 2000]), None);
        assert!(matches!(
            session.data_line(b".\r\n"),
            Some(DataEnd::TooLarge(_))
        ));
    }

    #[test]
    fn an_empty_body_is_a_message_too() {
        let mut session = in_body(Protocol::Smtp);
        assert_eq!(message(session.data_line(b".\r\n")).1, b"");
    }

    #[test]
    fn a_declared_size_over_the_limit_is_refused_at_mail() {
        let mut session = Session::new(config(Protocol::Smtp));
        let ehlo = say(&mut session, "EHLO c.example");
        assert!(ehlo.reply().lines.contains(&"SIZE 1000".to_owned()));
        let cases = [
            ("SIZE=1001", "552 5.3.4"),
            ("SIZE=99999999999999999999999999", "552 5.3.4"),
            ("SIZE=1000", "250 2.1.0"),
        ];
        for (size, expected) in cases {
            assert_eq!(
                answer(&say(&mut session, &format!("{MAIL} {size}"))),
                expected,
                "{size}"
            );
        }
    }

    #[test]
    fn a_body_over_the_limit_is_dropped_and_refused_at_the_final_dot() {
        let mut session = in_body(Protocol::Smtp);
        let line = format!("{}\r\n", "x".repeat(98));
        for _ in 0..10 {
            // Ten lines of 100 bytes fill the limit exactly.
            assert_eq!(session.data_line(line.as_bytes()), None);
        }
        assert_eq!(
            session.data_line(b"one byte too many\r\n"),
            None,
            "the body is read to its end"
        );
        assert_eq!(session.data_line(line.as_bytes()), None);
        let end = session.data_line(b".\r\n");
        let refusal = Reply::new(552, "5.3.4 Error: message too large");
        assert_eq!(end, Some(DataEnd::TooLarge(refusal)));
        // The transaction is gone, the greeting is not.
        assert_eq!(answer(&say(&mut session, RCPT)), "503 5.5.1");
        prepare(&mut session, MAIL);
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not() {
        // Nine lines of 100 bytes with their CRLF, then one of 100 or 101: the CRLF counts.
        for (last_line, fits) in [(98, true), (99, false)] {
            let mut session = in_body(Protocol::Smtp);
            let full = format!("{}\r\n", "x".repeat(98));
            let last = format!("{}\r\n", "x".repeat(last_line));
            let lines: Vec<&str> = std::iter::repeat_n(full.as_str(), 9)
                .chain([last.as_str(), ".\r\n"])
                .collect();
            match body(&mut session, &lines) {
                Some(DataEnd::Message { message, .. }) => assert!(fits && message.len() == 1000),
                Some(DataEnd::TooLarge(reply)) => assert!(!fits, "{reply}"),
                None => panic!("the body did not end"),
            }
        }
    }

    #[test]
    fn lmtp_refuses_an_oversized_body_once_per_recipient() {
        let mut session = Session::new(config(Protocol::Lmtp));
        prepare(
            &mut session,
            &format!("LHLO c | {MAIL} | {RCPT} | RCPT TO:<billing@example.com> | DATA"),
        );
        let big = "x".repeat(2000);
        let Some(DataEnd::TooLarge(reply)) = body(&mut session, &[&big, "."]) else {
            panic!("expected TooLarge");
        };
        assert_eq!(session.message_failed(reply.clone()), vec![reply; 2]);
    }

    #[test]
    fn out_of_order_and_malformed_commands_are_refused_with_their_codes() {
        use Protocol::{Lmtp, Smtp};
        // (what, protocol, setup script, the command, the reply's codes)
        let cases = [
            ("MAIL before EHLO", Smtp, "", MAIL, "503 5.5.1"),
            ("MAIL before LHLO", Lmtp, "", MAIL, "503 5.5.1"),
            ("RCPT before MAIL", Smtp, "EHLO c", RCPT, "503 5.5.1"),
            ("DATA before MAIL", Smtp, "EHLO c", "DATA", "503 5.5.1"),
            (
                "DATA before any RCPT",
                Smtp,
                &format!("EHLO c | {MAIL}"),
                "DATA",
                "503 5.5.1",
            ),
            (
                "nested MAIL",
                Smtp,
                &format!("EHLO c | {MAIL}"),
                MAIL,
                "503 5.5.1",
            ),
            (
                "EHLO resets",
                Smtp,
                &format!("EHLO c | {MAIL} | EHLO c"),
                RCPT,
                "503 5.5.1",
            ),
            (
                "RSET resets",
                Smtp,
                &format!("EHLO c | {MAIL} | RSET"),
                RCPT,
                "503 5.5.1",
            ),
            ("unknown command", Smtp, "", "BOGUS", "500 5.5.2"),
            ("empty line", Smtp, "", "", "500 5.5.2"),
            ("EHLO in LMTP", Lmtp, "", "EHLO c", "500 5.5.1"),
            ("HELO in LMTP", Lmtp, "", "HELO c", "500 5.5.1"),
            ("LHLO in SMTP", Smtp, "", "LHLO c", "500 5.5.1"),
            ("EHLO without a name", Smtp, "", "EHLO", "501 5.5.4"),
            (
                "EHLO with a control character",
                Smtp,
                "",
                "EHLO c\u{7}",
                "501 5.5.4",
            ),
            (
                "MAIL without FROM:",
                Smtp,
                "EHLO c",
                "MAIL <a@example.net>",
                "501 5.5.4",
            ),
            (
                "nothing after FROM:",
                Smtp,
                "EHLO c",
                "MAIL FROM:",
                "501 5.1.7",
            ),
            (
                "unclosed bracket",
                Smtp,
                "EHLO c",
                "MAIL FROM:<a@example.net",
                "501 5.1.7",
            ),
            (
                "not an address",
                Smtp,
                "EHLO c",
                "MAIL FROM:<not an address>",
                "501 5.1.7",
            ),
            ("no domain", Smtp, "EHLO c", "MAIL FROM:<ann@>", "501 5.1.7"),
            (
                "junk after bracket",
                Smtp,
                "EHLO c",
                "MAIL FROM:<a@example.net>x",
                "501 5.1.7",
            ),
            (
                "bad SIZE",
                Smtp,
                "EHLO c",
                &format!("{MAIL} SIZE=ten"),
                "501 5.5.4",
            ),
            (
                "SIZE without value",
                Smtp,
                "EHLO c",
                &format!("{MAIL} SIZE"),
                "501 5.5.4",
            ),
            (
                "bad BODY",
                Smtp,
                "EHLO c",
                &format!("{MAIL} BODY=BINARYMIME"),
                "501 5.5.4",
            ),
            (
                "unknown MAIL param",
                Smtp,
                "EHLO c",
                &format!("{MAIL} SMTPUTF8"),
                "555 5.5.4",
            ),
            (
                "null recipient",
                Smtp,
                &format!("EHLO c | {MAIL}"),
                "RCPT TO:<>",
                "501 5.1.3",
            ),
            (
                "RCPT without TO:",
                Smtp,
                &format!("EHLO c | {MAIL}"),
                "RCPT <b@x.org>",
                "501 5.5.4",
            ),
            (
                "RCPT param",
                Smtp,
                &format!("EHLO c | {MAIL}"),
                &format!("{RCPT} NOTIFY=NEVER"),
                "555 5.5.4",
            ),
            (
                "DATA argument",
                Smtp,
                &format!("EHLO c | {MAIL} | {RCPT}"),
                "DATA now",
                "501 5.5.4",
            ),
            ("VRFY without argument", Smtp, "", "VRFY", "501 5.5.4"),
            ("EXPN", Smtp, "", "EXPN staff", "502 5.5.1"),
        ];
        for (what, protocol, setup, line, expected) in cases {
            let mut session = Session::new(config(protocol));
            prepare(&mut session, setup);
            let step = say(&mut session, line);
            assert!(matches!(step, Step::Reply(_)), "{what}: {step:?}");
            assert_eq!(answer(&step), expected, "{what}: {}", step.reply());
        }
    }

    #[test]
    fn addresses_are_read_leniently_and_kept_as_written() {
        let cases = [
            ("MAIL FROM:<ann@example.net>", "ann@example.net"),
            ("mail from:<ann@example.net>", "ann@example.net"),
            ("MAIL FROM: <Ann@Example.NET>", "Ann@Example.NET"),
            ("MAIL FROM:ann@example.net", "ann@example.net"),
            (
                "MAIL FROM:<@relay.example,@hop.example:ann@example.net>",
                "ann@example.net",
            ),
            (
                "MAIL FROM:<\"ann > bob\"@example.net> BODY=8BITMIME SIZE=10",
                "\"ann > bob\"@example.net",
            ),
            ("MAIL FROM:<ann@[192.0.2.1]> body=7bit", "ann@[192.0.2.1]"),
            ("MAIL FROM:<>", ""),
        ];
        for (line, stored) in cases {
            let mut session = Session::new(config(Protocol::Smtp));
            prepare(
                &mut session,
                &format!("EHLO c | {line} | rcpt to: <SUPPORT@example.com> | DATA"),
            );
            let (envelope, _) = message(body(&mut session, &[".\r\n"]));
            assert_eq!(envelope.mail_from, stored, "{line}");
            assert_eq!(envelope.recipients, ["SUPPORT@example.com"], "{line}");
        }
    }

    #[test]
    fn the_null_sender_is_accepted_and_checked_as_empty() {
        let desk = Desk::default();
        let mut session = Session::new(config(Protocol::Smtp));
        session.command(b"EHLO c.example\r\n", &desk);
        assert_eq!(
            answer(&session.command(b"MAIL FROM:<>\r\n", &desk)),
            "250 2.1.0"
        );
        assert_eq!(*desk.senders.borrow(), [""]);
    }

    #[test]
    fn refused_recipients_and_senders_get_the_mailboxes_reply_and_are_not_kept() {
        let mut session = Session::new(config(Protocol::Smtp));
        prepare(&mut session, "EHLO c.example");
        let sender = say(&mut session, "MAIL FROM:<noisy@example.net>");
        assert_eq!(
            wire(sender.reply()),
            "450 4.7.1 Error: too many messages, try again later\r\n"
        );
        prepare(&mut session, MAIL);
        let refused = say(&mut session, "RCPT TO:<sales@example.com>");
        let expected =
            "550 5.1.1 <sales@example.com>: Recipient address rejected: User unknown\r\n";
        assert_eq!(wire(refused.reply()), expected);
        prepare(&mut session, &format!("{RCPT} | DATA"));
        let (envelope, _) = message(body(&mut session, &[".\r\n"]));
        assert_eq!(envelope.recipients, ["support@example.com"]);
    }

    #[test]
    fn recipients_beyond_the_limit_get_452_and_the_rest_are_kept() {
        let mut session = Session::new(SessionConfig {
            max_recipients: 1,
            ..config(Protocol::Smtp)
        });
        prepare(&mut session, &format!("EHLO c.example | {MAIL} | {RCPT}"));
        assert_eq!(
            answer(&say(&mut session, "RCPT TO:<billing@example.com>")),
            "452 4.5.3"
        );
        assert!(matches!(say(&mut session, "DATA"), Step::StartData(_)));
    }

    #[test]
    fn pipelined_commands_fed_one_line_at_a_time_are_answered_in_order() {
        let pipelines = [
            (
                [RCPT, "RCPT TO:<nobody@example.com>"],
                ["250 2.1.5", "550 5.1.1", "354"],
            ),
            (
                [
                    "RCPT TO:<sales@example.com>",
                    "RCPT TO:<nobody@example.com>",
                ],
                ["550 5.1.1", "550 5.1.1", "554 5.5.1"],
            ),
        ];
        for (recipients, expected) in pipelines {
            let mut session = Session::new(config(Protocol::Smtp));
            prepare(&mut session, &format!("EHLO c.example | {MAIL}"));
            let steps: Vec<Step> = [recipients[0], recipients[1], "DATA"]
                .iter()
                .map(|line| say(&mut session, line))
                .collect();
            assert_eq!(steps.iter().map(answer).collect::<Vec<_>>(), expected);
            // After only refusals, the body the client might send is not expected.
            assert_eq!(matches!(steps[2], Step::StartData(_)), expected[2] == "354");
        }
    }

    #[test]
    fn ehlo_lists_extensions_and_helo_answers_in_one_line() {
        let mut session = with_certificate();
        assert_eq!(
            wire(say(&mut session, "EHLO client.example.net").reply()),
            "250-mx.example.com greets client.example.net\r\n250-PIPELINING\r\n250-SIZE 1000\r\n\
             250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"
        );
        assert_eq!(
            wire(say(&mut session, "HELO client.example.net").reply()),
            "250 mx.example.com greets client.example.net\r\n"
        );
        let mut session = Session::new(config(Protocol::Lmtp));
        let lhlo = wire(say(&mut session, "lhlo mta.example.com").reply());
        assert!(
            lhlo.starts_with("250-mx.example.com greets mta.example.com\r\n"),
            "{lhlo}"
        );
        assert!(
            lhlo.ends_with("250 ENHANCEDSTATUSCODES\r\n"),
            "no STARTTLS without a certificate: {lhlo}"
        );
    }

    #[test]
    fn starttls_forgets_the_session_and_is_no_longer_offered() {
        let mut session = with_certificate();
        prepare(&mut session, "EHLO c.example");
        let step = say(&mut session, "STARTTLS");
        assert!(matches!(step, Step::StartTls(_)));
        assert_eq!(wire(step.reply()), "220 2.0.0 Ready to start TLS\r\n");
        session.tls_started();
        assert!(session.tls());

        assert_eq!(
            answer(&say(&mut session, MAIL)),
            "503 5.5.1",
            "EHLO is forgotten"
        );
        let ehlo = say(&mut session, "EHLO c.example");
        assert!(
            !ehlo.reply().lines.contains(&"STARTTLS".to_owned()),
            "{}",
            ehlo.reply()
        );
        assert_eq!(answer(&say(&mut session, "STARTTLS")), "503 5.5.1");
        prepare(&mut session, &format!("{MAIL} | {RCPT} | DATA"));
        let (envelope, _) = message(body(&mut session, &[".\r\n"]));
        assert!(envelope.tls);
    }

    #[test]
    fn starttls_is_refused_without_a_certificate_or_inside_a_transaction() {
        let mut session = Session::new(config(Protocol::Smtp));
        prepare(&mut session, "EHLO c.example");
        assert_eq!(answer(&say(&mut session, "STARTTLS")), "454 4.7.0");

        let mut session = with_certificate();
        prepare(&mut session, &format!("EHLO c.example | {MAIL}"));
        assert_eq!(answer(&say(&mut session, "STARTTLS")), "503 5.5.1");
    }

    #[test]
    fn a_command_before_the_tls_handshake_closes_the_session() {
        let mut session = with_certificate();
        prepare(&mut session, "EHLO c.example | STARTTLS");
        let injected = say(&mut session, MAIL);
        assert!(matches!(injected, Step::Close(_)));
        assert_eq!(answer(&injected), "421 4.7.0");
    }

    #[test]
    fn ten_refused_commands_in_a_row_close_the_session() {
        let mut session = Session::new(config(Protocol::Smtp));
        for attempt in 1..MAX_ERRORS_IN_ROW {
            assert!(
                matches!(say(&mut session, "BOGUS"), Step::Reply(_)),
                "attempt {attempt}"
            );
        }
        let last = say(&mut session, "BOGUS");
        assert!(matches!(last, Step::Close(_)));
        assert_eq!(
            wire(last.reply()),
            "421 4.7.0 mx.example.com Error: too many errors\r\n"
        );
        assert!(
            matches!(say(&mut session, "NOOP"), Step::Close(_)),
            "nothing more after closing"
        );
    }

    #[test]
    fn a_command_that_moves_the_session_forward_clears_the_error_count_but_noop_does_not() {
        let mut session = Session::new(config(Protocol::Smtp));
        for _ in 1..MAX_ERRORS_IN_ROW {
            say(&mut session, "BOGUS");
        }
        prepare(&mut session, "EHLO c.example");
        for _ in 1..MAX_ERRORS_IN_ROW {
            assert!(matches!(say(&mut session, "BOGUS"), Step::Reply(_)));
        }
        prepare(&mut session, "NOOP");
        assert!(matches!(say(&mut session, "BOGUS"), Step::Close(_)));
    }

    #[test]
    fn temporary_refusals_do_not_count_towards_the_error_limit() {
        let mut session = Session::new(config(Protocol::Smtp));
        prepare(&mut session, "EHLO c.example");
        for _ in 0..MAX_ERRORS_IN_ROW * 2 {
            assert!(matches!(
                say(&mut session, "MAIL FROM:<noisy@example.net>"),
                Step::Reply(_)
            ));
        }
    }

    #[test]
    fn quit_closes_with_221_even_mid_transaction() {
        let mut session = Session::new(config(Protocol::Smtp));
        prepare(&mut session, &format!("EHLO c.example | {MAIL}"));
        assert_eq!(
            say(&mut session, "quit"),
            Step::Close(Reply::new(221, "2.0.0 Bye"))
        );
    }

    #[test]
    fn command_lines_over_the_limit_are_refused() {
        let mut session = Session::new(config(Protocol::Smtp));
        // With its CRLF, this line is exactly MAX_COMMAND_LINE long.
        let longest = format!("NOOP {}", "x".repeat(MAX_COMMAND_LINE - 7));
        assert_eq!(answer(&say(&mut session, &longest)), "250 2.0.0");
        let too_long = say(&mut session, &format!("{longest}x"));
        assert_eq!(wire(too_long.reply()), "500 5.5.2 Error: line too long\r\n");
    }

    #[test]
    fn commands_take_bare_lf_or_no_ending_and_refuse_invalid_utf8() {
        let desk = Desk::default();
        let mut session = Session::new(config(Protocol::Smtp));
        assert_eq!(answer(&session.command(b"EHLO c.example\n", &desk)), "250");
        assert_eq!(answer(&session.command(b"NOOP", &desk)), "250 2.0.0");
        let latin1 = session.command(b"MAIL FROM:<\xe9@example.net>\r\n", &desk);
        assert_eq!(answer(&latin1), "500 5.5.2");
    }

    #[test]
    fn small_talk_gets_its_fixed_answers() {
        let mut session = Session::new(config(Protocol::Smtp));
        let cases = [
            ("NOOP", "250 2.0.0"),
            ("VRFY support", "252 2.0.0"),
            ("HELP", "214 2.0.0"),
            ("RSET", "250 2.0.0"),
        ];
        for (line, expected) in cases {
            assert_eq!(answer(&say(&mut session, line)), expected, "{line}");
        }
        let timeout = wire(&session.idle_timeout_reply());
        assert_eq!(
            timeout,
            "421 4.4.2 mx.example.com Error: timeout exceeded\r\n"
        );
    }

    #[test]
    fn replies_repeat_the_enhanced_code_on_every_line_and_cannot_be_split_by_their_text() {
        let cases = [
            (
                Reply::new(550, "5.1.1 No such mailbox"),
                "550 5.1.1 No such mailbox\r\n",
            ),
            (
                Reply::new(250, "2.0.0 first\nsecond"),
                "250-2.0.0 first\r\n250 2.0.0 second\r\n",
            ),
            (
                Reply::new(550, "4.1.1 wrong class"),
                "550 4.1.1 wrong class\r\n",
            ),
            (Reply::new(221, "Bye"), "221 Bye\r\n"),
            (Reply::new(250, ""), "250\r\n"),
            (Reply::new(250, "2.0.0"), "250 2.0.0\r\n"),
            (
                Reply::new(550, "5.7.1 evil\r250 injected"),
                "550 5.7.1 evil 250 injected\r\n",
            ),
        ];
        for (reply, bytes) in cases {
            assert_eq!(wire(&reply), bytes, "{reply:?}");
        }
        assert_eq!(
            Reply::new(550, "5.1.1 No such mailbox").to_string(),
            "550 5.1.1 No such mailbox"
        );
    }

    #[test]
    fn body_lines_outside_data_are_ignored() {
        let mut session = Session::new(config(Protocol::Smtp));
        assert_eq!(session.data_line(b".\r\n"), None);
        prepare(&mut session, "EHLO c.example");
    }
}
