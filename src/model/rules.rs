//! Rule conditions (`if`/`unless` after tcp-request, http-request, use_backend...): named
//! ACLs must be declared before use, and anonymous ACLs (`{ ... }`) must load their files.
use crate::config::ast::Stmt;

use super::proxy::Proxy;
use super::{files, Builder, Out};

/// ACLs every proxy has (HAProxy's predefined ACLs).
const BUILTIN_ACLS: &[&str] = &[
    "FALSE",
    "HTTP",
    "HTTP_1.0",
    "HTTP_1.1",
    "HTTP_2.0",
    "HTTP_CONTENT",
    "HTTP_URL_ABS",
    "HTTP_URL_SLASH",
    "HTTP_URL_STAR",
    "LOCALHOST",
    "METH_CONNECT",
    "METH_DELETE",
    "METH_GET",
    "METH_HEAD",
    "METH_OPTIONS",
    "METH_POST",
    "METH_PUT",
    "METH_TRACE",
    "RDP_COOKIE",
    "REQ_CONTENT",
    "TRUE",
    "WAIT_END",
];

/// The highest sticky counter a rule may track (HAProxy's default build has three).
const MAX_TRACK_SC: u32 = 2;

/// Index of the `if`/`unless` word that starts a rule's condition, if any.
pub fn condition_start(stmt: &Stmt, from: usize) -> Option<usize> {
    (from..stmt.words.len()).find(|&i| matches!(stmt.word(i), "if" | "unless"))
}

/// Checks the condition starting at word `at` (`if`/`unless`); returns HAProxy's inner
/// error text (without the rule-specific framing) on failure.
fn check_condition(b: &Builder, proxy: &Proxy, stmt: &Stmt, at: usize) -> Result<(), String> {
    let mut i = at + 1;
    while i < stmt.words.len() {
        let word = stmt.word(i);
        match word {
            "||" | "!" => i += 1,
            _ if word.eq_ignore_ascii_case("or") => i += 1,
            "{" => {
                let end = (i + 1..stmt.words.len()).find(|&j| stmt.word(j) == "}").unwrap_or(stmt.words.len());
                if let Some(file) = files::missing_pattern_file(b, stmt, i + 2, end) {
                    return Err(format!("failed to open pattern file <{file}>"));
                }
                i = end + 1;
            }
            _ => {
                let name = word.trim_start_matches('!');
                if !name.is_empty() && !proxy.acls.contains(name) && !BUILTIN_ACLS.contains(&name) {
                    return Err(format!("no such ACL : '{name}'"));
                }
                i += 1;
            }
        }
    }
    Ok(())
}

/// Checks the condition of a rule line, framing errors as HAProxy frames them for each
/// family of rules.
pub(crate) fn check_rule(b: &Builder, proxy: &Proxy, stmt: &Stmt, out: &mut Out) {
    let kw = stmt.keyword();
    let first_action = match kw {
        "tcp-request" | "tcp-response" => 2,
        _ => 1,
    };
    if first_action == 2 {
        let n = stmt.word(2).strip_prefix("track-sc").and_then(|n| n.parse::<u32>().ok());
        if let Some(n) = n.filter(|&n| n > MAX_TRACK_SC) {
            let rule = format!("{kw} {} {}", stmt.word(1), stmt.word(2));
            let text = format!("'{rule}' : {n} track-sc number exceeding {MAX_TRACK_SC} (MAX_SESS_STKCTR-1) value");
            return out.alert_at(stmt, 2, text);
        }
    }
    let Some(at) = condition_start(stmt, first_action) else {
        return;
    };
    let Err(err) = check_condition(b, proxy, stmt, at) else {
        return;
    };
    let text = match kw {
        "tcp-request" | "tcp-response" => format!(
            "'{kw} {} {}' : error detected in {} '{}' while parsing '{}' condition : {err}",
            stmt.word(1),
            stmt.word(2),
            proxy.kind.type_str(),
            proxy.name,
            stmt.word(at)
        ),
        "http-request" | "http-response" | "http-after-response" => {
            format!("error detected while parsing an '{kw} {}' condition : {err}.", stmt.word(1))
        }
        "use_backend" | "use-server" => {
            format!("error detected while parsing switching rule : {err}.")
        }
        _ => format!("error detected while parsing a '{kw}' rule : {err}."),
    };
    out.alert_at(stmt, at, text);
}
