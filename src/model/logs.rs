//! `log` lines (global and proxies), checked in HAProxy's order: `no log`, `log global`,
//! the argument count, `len`/`format`/`sample`, the facility and levels, then the address.
use crate::config::ast::Stmt;

use super::address::{self, AddrContext};
use super::units::atoi;

const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2", "ftp", "ntp", "audit",
    "alert", "cron2", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
const LEVELS: &[&str] = &["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
const FORMATS: &[&str] = &["local", "rfc3164", "rfc5424", "priority", "short", "timed", "iso", "raw"];

/// Checks one `log` statement; `Err` holds HAProxy's text (after `parsing [f:l] : `).
pub fn check_log_line(stmt: &Stmt, global: bool, negated: bool) -> Result<(), String> {
    let arg = |i: usize| stmt.word(i);
    if negated {
        return if arg(1).is_empty() { Ok(()) } else { Err("log : 'no log' does not expect arguments".into()) };
    }
    if arg(1) == "global" && arg(2).is_empty() {
        return if global { Err("log : 'global' is not supported for a global syslog server".into()) } else { Ok(()) };
    }
    if arg(1).is_empty() || arg(2).is_empty() {
        let or_global = if global { "" } else { "or global" };
        return Err(format!("log : expects <address> and <facility> {or_global} as arguments"));
    }
    let mut i = 2;
    if arg(i) == "len" {
        let len = atoi(arg(i + 1));
        if !(80..=65535).contains(&len) {
            return Err(format!("log : invalid log length '{}', must be between 80 and 65535", arg(i + 1)));
        }
        i += 2;
    }
    if arg(i) == "format" {
        if !FORMATS.contains(&arg(i + 1)) {
            return Err(format!("log : unknown log format '{}'", arg(i + 1)));
        }
        i += 2;
    }
    if arg(i) == "sample" {
        i += 2;
    }
    if !FACILITIES.contains(&arg(i)) {
        return Err(format!("log : unknown log facility '{}'", arg(i)));
    }
    i += 1;
    if !arg(i).is_empty() {
        if !LEVELS.contains(&arg(i)) {
            return Err(format!("log : unknown optional log level '{}'", arg(i)));
        }
        i += 1;
        if !arg(i).is_empty() {
            if !LEVELS.contains(&arg(i)) {
                return Err(format!("log : unknown optional minimum log level '{}'", arg(i)));
            }
            i += 1;
        }
    }
    if !arg(i).is_empty() {
        return Err(format!("log : cannot handle unexpected argument '{}'", arg(i)));
    }
    let target = match arg(1) {
        "stdout" => "fd@1",
        "stderr" => "fd@2",
        t => t,
    };
    address::parse_addr(target, AddrContext::Log).map(|_| ()).map_err(|e| address::log_error_message(&e))
}

/// The target of a `log` line `check_log_line` accepted, or why hapx cannot send to it
/// (ring buffers, stream targets, ...).
pub fn log_target(stmt: &Stmt) -> Result<crate::logging::LogTarget, String> {
    let words: Vec<String> = stmt.args().iter().map(|w| w.text.clone()).collect();
    crate::logging::parse_log_target(&words).map_err(|e| format!("log {} ({e})", stmt.word(1)))
}

/// A `log-format` line: its text (for HAProxy's warnings) and the compiled format, or why
/// hapx cannot compile it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFormatLine {
    pub text: String,
    pub compiled: Result<crate::logging::LogFormat, String>,
}

impl LogFormatLine {
    pub fn new(text: &str) -> LogFormatLine {
        LogFormatLine { text: text.to_string(), compiled: crate::logging::compile_log_format(text) }
    }
}
