//! Diagnostics: one type for every message the front end produces, and its renderers.
pub mod render;
pub mod verdict;

use std::fmt;
use std::sync::Arc;

/// Where a word sits: file, 1-based line, 1-based column (in bytes) and length in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

impl Span {
    pub fn new(file: Arc<str>, line: u32, col: u32, len: u32) -> Span {
        Span { file, line, col, len }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `[DIAG]`: only shown with `-dD`.
    Diag,
    /// `[NOTICE]`
    Notice,
    /// `[WARNING]`: the config still loads (unless `zero-warning`).
    Warning,
    /// `[ALERT]`: the config is refused.
    Alert,
}

impl Severity {
    /// The tag HAProxy prints, padded as it pads it.
    pub fn tag(self) -> &'static str {
        match self {
            Severity::Diag => "[DIAG]   ",
            Severity::Notice => "[NOTICE] ",
            Severity::Warning => "[WARNING]",
            Severity::Alert => "[ALERT]  ",
        }
    }
}

/// How HAProxy frames the location of a message; it differs between its code paths and we
/// reproduce each one so that output compares line for line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `parsing [file:line] : text` (keyword parsers).
    Parsing,
    /// `parsing [file:line]: text` (the line reader: quotes, escapes, directives).
    ParsingTight,
    /// `parsing [file:line]text`: the message carries its own separator (removed keywords,
    /// whose texts use both ` : ` and `: `).
    ParsingJoined,
    /// `Parsing [file:line]: text` (name clashes between sections).
    ParsingCapital,
    /// `[file:line] : text` (post-parse checks, address resolution).
    Located,
    /// `text` with no location (whole-config checks), even when a span is known.
    Bare,
}

/// A stable identifier for a kind of diagnostic (e.g. `unknown-keyword`), for json and CI.
pub type Code = &'static str;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub span: Option<Span>,
    pub frame: Frame,
    /// The message as HAProxy words it (without location).
    pub message: String,
    /// Extra help that HAProxy does not print: did-you-mean, how to fix.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(
        severity: Severity,
        code: Code,
        span: Option<Span>,
        frame: Frame,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic { severity, code, span, frame, message: message.into(), hint: None }
    }

    /// An alert from a keyword parser: `parsing [file:line] : message`.
    pub fn alert(code: Code, span: &Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Alert, code, Some(span.clone()), Frame::Parsing, message)
    }

    /// A warning from a keyword parser: `parsing [file:line] : message`.
    pub fn warning(code: Code, span: &Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Severity::Warning, code, Some(span.clone()), Frame::Parsing, message)
    }

    pub fn with_frame(mut self, frame: Frame) -> Diagnostic {
        self.frame = frame;
        self
    }

    /// Records where the message is about, without changing how HAProxy frames it.
    pub fn with_span(mut self, span: &Span) -> Diagnostic {
        self.span = Some(span.clone());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// An alert that fails the load (most do; see [`CONTINUE`]).
    pub fn is_fatal(&self) -> bool {
        self.severity == Severity::Alert && self.code != CONTINUE
    }

    /// The text after `config : `, as HAProxy prints it.
    pub fn haproxy_text(&self) -> String {
        match (&self.span, self.frame) {
            (Some(s), Frame::Parsing) => {
                format!("parsing [{}:{}] : {}", s.file, s.line, self.message)
            }
            (Some(s), Frame::ParsingTight) => {
                format!("parsing [{}:{}]: {}", s.file, s.line, self.message)
            }
            (Some(s), Frame::ParsingJoined) => {
                format!("parsing [{}:{}]{}", s.file, s.line, self.message)
            }
            (Some(s), Frame::ParsingCapital) => {
                format!("Parsing [{}:{}]: {}", s.file, s.line, self.message)
            }
            (Some(s), Frame::Located) => format!("[{}:{}] : {}", s.file, s.line, self.message),
            _ => self.message.clone(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} config : {}", self.severity.tag().trim_end(), self.haproxy_text())
    }
}

/// An alert after which HAProxy goes on as if nothing failed ("already specified. Continuing.").
pub const CONTINUE: Code = "alert-continue";

/// The code of "valid HAProxy, but hapx cannot run it yet": never changes HAProxy's verdict.
pub const UNSUPPORTED: Code = "unsupported";
