//! `hapx -c`: HAProxy's verdict on a loaded configuration, its messages in the chosen
//! format, and its exit code.
use std::collections::BTreeMap;
use std::io::Write;

use super::render;
use super::{Diagnostic, Severity, UNSUPPORTED};
use crate::cli::OutputFormat;
use crate::model::post::PostVerdict;
use crate::model::Loaded;

/// What `-c` concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Valid but nothing would listen: HAProxy exits 2.
    NoListener,
    Invalid,
}

impl Verdict {
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Valid => 0,
            Verdict::NoListener => 2,
            Verdict::Invalid => 1,
        }
    }
}

/// Whether a diagnostic is HAProxy's own (as opposed to hapx's "not supported" notes).
fn is_haproxy(d: &Diagnostic) -> bool {
    d.code != UNSUPPORTED
}

/// The verdict, with the closing lines HAProxy prints for it (severity, text).
pub fn verdict(loaded: &Loaded, zero_warning_flag: bool) -> (Verdict, Vec<(Severity, String)>) {
    let mut closing = Vec::new();
    if !loaded.parse_failed.is_empty() || loaded.aborted {
        for file in &loaded.parse_failed {
            closing.push((Severity::Alert, format!("Error(s) found in configuration file : {file}")));
        }
        // An aborted read ends without the summary line.
        if !loaded.aborted {
            closing.push((Severity::Alert, "Fatal errors found in configuration.".to_string()));
        }
        return (Verdict::Invalid, closing);
    }
    match loaded.post {
        PostVerdict::Fatal => {
            closing.push((Severity::Alert, "Fatal errors found in configuration.".to_string()));
            return (Verdict::Invalid, closing);
        }
        PostVerdict::AddrFailed => return (Verdict::Invalid, closing),
        PostVerdict::Ok => {}
    }
    let warned = loaded.diagnostics.iter().any(|d| d.severity == Severity::Warning && is_haproxy(d));
    if warned && (zero_warning_flag || loaded.config.global.zero_warning) {
        closing.push((Severity::Alert, "Some warnings were found and 'zero-warning' is set. Aborting.".to_string()));
        return (Verdict::Invalid, closing);
    }
    if !loaded.config.has_listener() {
        return (Verdict::NoListener, closing);
    }
    (Verdict::Valid, closing)
}

/// Source lines, read once per file, for the human format's carets.
fn source_line<'a>(cache: &'a mut BTreeMap<String, Vec<String>>, file: &str, line: u32) -> Option<&'a str> {
    let lines = cache.entry(file.to_string()).or_insert_with(|| {
        std::fs::read(file)
            .map(|b| String::from_utf8_lossy(&b).lines().map(str::to_string).collect())
            .unwrap_or_default()
    });
    lines.get((line as usize).checked_sub(1)?).map(String::as_str)
}

/// Prints the diagnostics and verdict of `-c` and returns the exit code.
pub fn report(
    loaded: &Loaded,
    format: OutputFormat,
    quiet: bool,
    zero_warning_flag: bool,
    err: &mut dyn Write,
    out: &mut dyn Write,
) -> i32 {
    let (verdict, closing) = verdict(loaded, zero_warning_flag);
    let pid = std::process::id();
    // The machine formats carry a failing verdict as a diagnostic of its own when no other
    // line says why (zero-warning), so that a refused config never reads as clean.
    let unexplained = verdict == Verdict::Invalid && !loaded.diagnostics.iter().any(|d| d.is_fatal());
    let closing_diags: Vec<Diagnostic> = closing
        .iter()
        .filter(|_| unexplained)
        .map(|(sev, text)| Diagnostic::new(*sev, "verdict", None, super::Frame::Bare, text.clone()))
        .collect();
    match format {
        OutputFormat::Haproxy => {
            // `global quiet` hides what comes after it; `-q` hides everything.
            let shown = if quiet { 0 } else { loaded.config.global.quiet_from.unwrap_or(loaded.diagnostics.len()) };
            for d in loaded.diagnostics.iter().take(shown) {
                let _ = writeln!(err, "{}", render::haproxy_line(d, pid));
            }
            if !quiet && !loaded.config.global.quiet {
                for (sev, text) in &closing {
                    let _ = writeln!(err, "{}", render::haproxy_plain(*sev, pid, text));
                }
                let warned = loaded.diagnostics.iter().any(|d| d.severity == Severity::Warning && is_haproxy(d));
                match verdict {
                    Verdict::Valid => {
                        if warned {
                            let _ = writeln!(out, "Warnings were found.");
                        }
                        let _ = writeln!(out, "Configuration file is valid");
                    }
                    Verdict::NoListener => {
                        let _ = writeln!(
                            out,
                            "Configuration file has no error but will not start (no listener) => exit(2)."
                        );
                    }
                    Verdict::Invalid => {}
                }
            }
        }
        OutputFormat::Human => {
            let mut cache = BTreeMap::new();
            for d in &loaded.diagnostics {
                let line = d.span.as_ref().and_then(|s| source_line(&mut cache, &s.file, s.line).map(str::to_string));
                let _ = write!(err, "{}", render::human(d, line.as_deref()));
            }
            let (alerts, warnings, unsupported) = counts(&loaded.diagnostics);
            let _ = writeln!(
                err,
                "{}: {alerts} error(s), {warnings} warning(s), {unsupported} line(s) hapx cannot run yet (exit {})",
                match verdict {
                    Verdict::Valid => "valid",
                    Verdict::NoListener => "valid, but no listener",
                    Verdict::Invalid => "invalid",
                },
                verdict.exit_code()
            );
        }
        OutputFormat::Json => {
            for d in loaded.diagnostics.iter().chain(&closing_diags) {
                let _ = writeln!(out, "{}", render::json(d));
            }
            let _ = writeln!(out, "{{\"verdict\":\"{:?}\",\"exit\":{}}}", verdict, verdict.exit_code());
        }
        OutputFormat::Github => {
            for d in loaded.diagnostics.iter().chain(&closing_diags) {
                let _ = writeln!(out, "{}", render::github(d));
            }
        }
    }
    verdict.exit_code()
}

fn counts(diags: &[Diagnostic]) -> (usize, usize, usize) {
    let alerts = diags.iter().filter(|d| d.severity == Severity::Alert).count();
    let unsupported = diags.iter().filter(|d| d.code == UNSUPPORTED).count();
    let warnings = diags.iter().filter(|d| d.severity == Severity::Warning).count() - unsupported;
    (alerts, warnings, unsupported)
}
