//! Renders diagnostics: HAProxy's own text, a human form with the word marked, JSON lines
//! and GitHub workflow annotations.
use std::fmt::Write as _;

use super::{Diagnostic, Severity, UNSUPPORTED};

/// One line (or block) in HAProxy's format: `[ALERT]    (pid) : config : text`.
pub fn haproxy_line(d: &Diagnostic, pid: u32) -> String {
    format!("{:<10} ({pid}) : config : {}", d.severity.tag().trim_end(), d.haproxy_text())
}

/// A plain line with no location framing, in HAProxy's format.
pub fn haproxy_plain(severity: Severity, pid: u32, text: &str) -> String {
    format!("{:<10} ({pid}) : config : {text}", severity.tag().trim_end())
}

/// The human form: `file:line:col: severity: message`, the line itself and a caret under
/// the offending word, then the hint.
pub fn human(d: &Diagnostic, source_line: Option<&str>) -> String {
    let sev = match d.severity {
        Severity::Alert => "error",
        Severity::Warning if d.code == UNSUPPORTED => "unsupported",
        Severity::Warning => "warning",
        Severity::Notice => "notice",
        Severity::Diag => "diag",
    };
    let mut s = String::new();
    let message = d.message.lines().next().unwrap_or("");
    match &d.span {
        Some(span) => {
            let _ = writeln!(s, "{}:{}:{}: {sev}[{}]: {message}", span.file, span.line, span.col, d.code);
            if let Some(line) = source_line {
                let line = line.trim_end_matches(['\r', '\n']);
                let _ = writeln!(s, "  {line}");
                let pad: String = line
                    .bytes()
                    .take(span.col.saturating_sub(1) as usize)
                    .map(|b| if b == b'\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(s, "  {pad}{}", "^".repeat(span.len.max(1) as usize));
            }
        }
        None => {
            let _ = writeln!(s, "{sev}[{}]: {message}", d.code);
        }
    }
    if let Some(hint) = &d.hint {
        let _ = writeln!(s, "  = help: {hint}");
    }
    s
}

fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// One JSON object per diagnostic, on one line.
pub fn json(d: &Diagnostic) -> String {
    let sev = match d.severity {
        Severity::Alert => "alert",
        Severity::Warning => "warning",
        Severity::Notice => "notice",
        Severity::Diag => "diag",
    };
    let mut s = format!("{{\"severity\":\"{sev}\",\"code\":\"{}\"", json_escape(d.code));
    if let Some(span) = &d.span {
        let _ = write!(
            s,
            ",\"file\":\"{}\",\"line\":{},\"column\":{},\"length\":{}",
            json_escape(&span.file),
            span.line,
            span.col,
            span.len
        );
    }
    let _ =
        write!(s, ",\"message\":\"{}\",\"haproxy\":\"{}\"", json_escape(&d.message), json_escape(&d.haproxy_text()));
    if let Some(hint) = &d.hint {
        let _ = write!(s, ",\"hint\":\"{}\"", json_escape(hint));
    }
    s.push('}');
    s
}

/// Escapes a GitHub workflow command's data part.
fn gh_escape(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn gh_prop(text: &str) -> String {
    gh_escape(text).replace(':', "%3A").replace(',', "%2C")
}

/// A GitHub Actions annotation: `::error file=F,line=L,col=C,title=T::message`.
pub fn github(d: &Diagnostic) -> String {
    let level = match d.severity {
        Severity::Alert => "error",
        Severity::Warning => "warning",
        _ => "notice",
    };
    let mut props = Vec::new();
    if let Some(span) = &d.span {
        props.push(format!("file={}", gh_prop(&span.file)));
        props.push(format!("line={}", span.line));
        props.push(format!("col={}", span.col));
        props.push(format!("endColumn={}", span.col + span.len.max(1)));
    }
    props.push(format!("title={}", gh_prop(&format!("hapx {}", d.code))));
    let mut message = d.message.clone();
    if let Some(hint) = &d.hint {
        message.push_str(&format!(" ({hint})"));
    }
    format!("::{level} {}::{}", props.join(","), gh_escape(&message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Frame, Span};

    fn diag() -> Diagnostic {
        Diagnostic::new(
            Severity::Alert,
            "unknown-keyword",
            Some(Span::new("a.cfg".into(), 3, 5, 8)),
            Frame::Parsing,
            "unknown keyword 'maxconns' in 'global' section",
        )
        .with_hint("did you mean 'maxconn'?")
    }

    #[test]
    fn haproxy_format_pads_the_tag_like_haproxy() {
        assert_eq!(
            haproxy_line(&diag(), 42),
            "[ALERT]    (42) : config : parsing [a.cfg:3] : unknown keyword 'maxconns' in 'global' section"
        );
    }

    #[test]
    fn human_format_marks_the_word_under_its_line() {
        let text = human(&diag(), Some("    maxconns 10\n"));
        assert!(text.starts_with("a.cfg:3:5: error[unknown-keyword]: unknown keyword"));
        assert!(text.contains("\n      maxconns 10\n      ^^^^^^^^\n"), "{text}");
        assert!(text.contains("help: did you mean 'maxconn'?"));
    }

    #[test]
    fn json_is_one_escaped_object() {
        let mut d = diag();
        d.message = "a \"q\"\nb".into();
        let j = json(&d);
        assert!(j.starts_with("{\"severity\":\"alert\",\"code\":\"unknown-keyword\",\"file\":\"a.cfg\",\"line\":3,\"column\":5,\"length\":8"));
        assert!(j.contains("\"message\":\"a \\\"q\\\"\\nb\""));
        assert!(!j.contains('\n'));
    }

    #[test]
    fn github_annotation_escapes_properties() {
        let mut d = diag();
        d.span = Some(Span::new("dir,x/a:b.cfg".into(), 3, 5, 8));
        let g = github(&d);
        assert!(
            g.starts_with(
                "::error file=dir%2Cx/a%3Ab.cfg,line=3,col=5,endColumn=13,title=hapx unknown-keyword::unknown keyword"
            ),
            "{g}"
        );
    }
}
