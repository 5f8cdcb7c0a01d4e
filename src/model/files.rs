//! Files a configuration refers to (certificates, error pages, pattern files, Lua scripts)
//! and the user and group databases: HAProxy opens them while reading, so a missing one
//! is reported on the line that names it.
use std::path::Path;

use crate::check::{Diagnostic, Frame, Severity};
use crate::config::ast::Stmt;
use crate::config::parser::io_reason;

use super::{Builder, Out};

/// Looks a name up in a `name:x:id:...` database file (/etc/passwd, /etc/group).
fn id_in(db: &str, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(db).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

pub fn user_id(name: &str) -> Option<u32> {
    id_in("/etc/passwd", name)
}

pub fn group_id(name: &str) -> Option<u32> {
    id_in("/etc/group", name)
}

/// `Err(reason)` when the path cannot be opened, with the C library's wording.
fn stat(path: &Path) -> Result<(), String> {
    std::fs::metadata(path).map(|_| ()).map_err(|e| io_reason(&e))
}

/// Applies a `crt-base`/`ca-base` prefix to a relative path, as HAProxy does.
fn with_base(base: Option<&str>, path: &str) -> String {
    match base {
        Some(b) if !path.starts_with('/') && !b.is_empty() => {
            format!("{}/{}", b.trim_end_matches('/'), path)
        }
        _ => path.to_string(),
    }
}

/// `bind ... crt FILE`, `ca-file`, `crl-file`, `crt-list`: word `i` is the option.
pub(crate) fn check_cert_file(b: &Builder, context: &str, stmt: &Stmt, i: usize, out: &mut Out) {
    let opt = stmt.word(i);
    let arg = stmt.word(i + 1);
    match opt {
        "crt" => {
            let path = with_base(b.config.global.crt_base.as_deref(), arg);
            let full = b.resolve_path(&path);
            if let Err(reason) = stat(&full) {
                let text = format!("{context} : unable to stat SSL certificate from file '{path}' : {reason}.");
                return out.alert_at(stmt, i + 1, text);
            }
            // A certificate file without its key must have the key beside it, in FILE.key.
            if full.is_file()
                && !contains_private_key(&full)
                && stat(Path::new(&format!("{}.key", full.display()))).is_err()
            {
                out.alert_at(stmt, i + 1, format!("{context} : No Private Key found in '{path}.key'."));
            }
        }
        "crt-list" => {
            if let Err(reason) = stat(&b.resolve_path(arg)) {
                out.alert_at(stmt, i + 1, format!("{context} : 'crt-list' : cannot open file '{arg}' : {reason}"));
            }
        }
        _ => {
            let path = with_base(b.config.global.ca_base.as_deref(), arg);
            if let Err(reason) = stat(&b.resolve_path(&path)) {
                // HAProxy names every CA-like file a ca-file in its first line.
                let first = format!("Couldn't open the ca-file '{path}' ({reason}).");
                out.diags.push(Diagnostic::new(Severity::Alert, "file", Some(stmt.span_of(i + 1)), Frame::Bare, first));
                out.alert_at(stmt, i + 1, format!("{context} : '{opt}' : unable to load {path}"));
            }
        }
    }
}

/// Whether a PEM file holds a private key (HAProxy then needs no separate `.key` file).
fn contains_private_key(path: &Path) -> bool {
    std::fs::read(path).map(|b| b.windows(11).any(|w| w == b"PRIVATE KEY")).unwrap_or(false)
}

/// `ssl-dh-param-file FILE` in global.
pub(crate) fn check_dh_param_file(b: &Builder, stmt: &Stmt, out: &mut Out) {
    let file = stmt.word(1);
    if stat(&b.resolve_path(file)).is_err() {
        out.alert_at(stmt, 1, format!("'{}': unable to load DH parameters from file <{file}>.", stmt.keyword()));
    }
}

/// `errorfile <code> <file>`.
pub(crate) fn check_errorfile(b: &Builder, stmt: &Stmt, out: &mut Out) {
    let file = stmt.word(2);
    if stmt.word(1).is_empty() || file.is_empty() {
        return out.alert_at(stmt, 0, format!("{} : <code> and <file> arguments are required.", stmt.keyword()));
    }
    if stat(&b.resolve_path(file)).is_err() {
        out.alert_at(stmt, 2, format!("{} : error opening file '{file}'.", stmt.keyword()));
    }
}

/// The first `-f FILE` among words `from..end` (an ACL's flags) that cannot be opened.
pub(crate) fn missing_pattern_file<'a>(b: &Builder, stmt: &'a Stmt, from: usize, end: usize) -> Option<&'a str> {
    let mut i = from;
    while i < end {
        match stmt.word(i) {
            "-f" => {
                let file = stmt.word(i + 1);
                if stat(&b.resolve_path(file)).is_err() {
                    return Some(file);
                }
                i += 2;
            }
            "--" => break,
            _ => i += 1,
        }
    }
    None
}

/// `acl <name> <criterion> [-f file]...`: pattern files must open. Returns true when they do.
pub(crate) fn check_acl_files(b: &Builder, stmt: &Stmt, out: &mut Out) -> bool {
    let Some(file) = missing_pattern_file(b, stmt, 3, stmt.words.len()) else {
        return true;
    };
    let text = format!("error detected while parsing ACL '{}' : failed to open pattern file <{file}>.", stmt.word(1));
    out.alert_at(stmt, 1, text);
    false
}
