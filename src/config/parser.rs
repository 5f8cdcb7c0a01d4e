//! Files → sections → statements. Reads each file as HAProxy does, line by line: the lexer
//! splits words, `.if` blocks select live lines, section keywords open sections, and the
//! environment directives of `global` take effect for the lines that follow.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::{Diagnostic, Frame, Severity, Span};
use crate::config::ast::{Ast, Section, Stmt};
use crate::config::cond::{CondCtx, CondStack, Outcome, Stop, VarLookup};
use crate::config::lexer::{self, LexCtx, Vars, Word};
use crate::grammar::grammar;
use crate::version::Version;

impl VarLookup for Vars {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

/// Everything the reader needs besides the files.
pub struct ParseOptions {
    pub version: Version,
}

/// Expands `-f` arguments: a directory gives its non-hidden `*.cfg` files in byte order.
pub fn expand_paths(paths: &[PathBuf], diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        let entries = match std::fs::read_dir(path) {
            Ok(e) => e,
            Err(e) => {
                diags.push(open_error(path, &e));
                continue;
            }
        };
        let mut names: Vec<Vec<u8>> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file() || t.is_symlink()).unwrap_or(false))
            .map(|e| e.file_name().into_encoded_bytes())
            .filter(|n| n.ends_with(b".cfg") && !n.starts_with(b"."))
            .collect();
        names.sort();
        for name in names {
            let name = String::from_utf8_lossy(&name).into_owned();
            out.push(path.join(name));
        }
    }
    out
}

fn open_error(path: &Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic::new(
        Severity::Alert,
        "cannot-open",
        None,
        Frame::Bare,
        format!("Cannot open configuration file/directory {} : {}", path.display(), io_reason(e)),
    )
}

/// The C library's wording of an I/O error, without Rust's " (os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// What a keyword line did, as HAProxy's readers count it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineStatus {
    /// The line had a fatal error (counts toward the limit of 50).
    pub fatal: bool,
    /// Stop reading at once (HAProxy's ERR_ABORT).
    pub abort: bool,
}

/// Receives live statements in order, one by one, as HAProxy's section parsers do: a
/// section header (`opens_section`) or a keyword line under the current section.
pub trait Sink {
    fn on_line(&mut self, stmt: Stmt, opens_section: bool, diags: &mut Vec<Diagnostic>) -> LineStatus;
}

/// The plain syntax tree is itself a sink: it only records the lines.
impl Sink for Ast {
    fn on_line(&mut self, stmt: Stmt, opens_section: bool, _diags: &mut Vec<Diagnostic>) -> LineStatus {
        if opens_section {
            self.sections.push(Section { header: stmt, body: Vec::new() });
        } else if let Some(section) = self.sections.last_mut() {
            section.body.push(stmt);
        }
        LineStatus::default()
    }
}

/// HAProxy stops reading a file after this many fatal errors.
const MAX_FATAL: u32 = 50;

/// Reads and parses every file in order into `sink`. Returns false when reading was aborted.
pub fn parse_files(
    paths: &[PathBuf],
    opts: &ParseOptions,
    vars: &mut Vars,
    sink: &mut dyn Sink,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    for path in paths {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                diags.push(open_error(path, &e));
                return false;
            }
        };
        let name: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        if !parse_text(&name, &bytes, opts, vars, sink, diags) {
            return false;
        }
    }
    true
}

/// Parses a whole file into a syntax tree (for tests, fuzzing and tools).
pub fn parse_to_ast(
    file: &str,
    bytes: &[u8],
    opts: &ParseOptions,
    vars: &mut Vars,
    diags: &mut Vec<Diagnostic>,
) -> Ast {
    let name: Arc<str> = Arc::from(file);
    let mut ast = Ast { files: vec![name.clone()], sections: Vec::new() };
    parse_text(&name, bytes, opts, vars, &mut ast, diags);
    ast
}

/// Parses one file's bytes into `sink`. Every file starts outside any section.
/// Returns false when reading must stop (an abort, as HAProxy's ERR_ABORT).
pub fn parse_text(
    file: &Arc<str>,
    bytes: &[u8],
    opts: &ParseOptions,
    vars: &mut Vars,
    sink: &mut dyn Sink,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let (lines, missing_lf) = lexer::lines(bytes);
    let mut conds = CondStack::new();
    let mut in_section = false;
    // The current section keyword, for `${.SECTION}`.
    let mut section_name = String::new();
    let mut fatal = 0u32;
    let mut last = 0u32;
    let mut abort = false;
    // A scope error lets the reader go on only until the next keyword line.
    let mut abort_at_next_keyword = false;
    let mut buf = lexer::OutBuf::new();
    for raw in &lines {
        last = raw.number;
        if fatal >= MAX_FATAL {
            diags.push(tight(file, raw.number, 1, format!("too many fatal errors ({fatal}), stopping now.")));
            // The last line was not reached, so a missing final LF goes unnoticed.
            return conds.finish(raw.number).is_ok();
        }
        let lexed = lexer::split_line_tracked(
            raw.text,
            &LexCtx { vars, file, line: raw.number, section: &section_name },
            &mut buf,
        );
        let mut line_fatal = false;
        for err in &lexed.errors {
            let sev = if err.is_fatal() { Severity::Alert } else { Severity::Warning };
            line_fatal |= err.is_fatal();
            abort_at_next_keyword |= err.aborts();
            let span = Span::new(file.clone(), err.line, (err.pos as u32).max(1), 1);
            diags.push(Diagnostic::new(sev, "lexical", Some(span), err.frame(), err.message()));
        }
        if line_fatal {
            fatal += 1;
            continue;
        }
        let Some(first) = lexed.words.first() else {
            continue;
        };
        if first.text.starts_with('.') {
            let directive = first.text.clone();
            let span = Span::new(file.clone(), raw.number, first.col, first.len);
            let args: Vec<String> = lexed.words[1..].iter().map(|w| w.text.clone()).collect();
            let ctx = CondCtx { version: opts.version, vars: &*vars };
            match conds.handle(raw.number, &directive, &args, &ctx) {
                Ok(Outcome::Nothing) => {}
                Ok(Outcome::Message(sev, text)) => {
                    diags.push(Diagnostic::new(sev, "directive", Some(span), Frame::ParsingTight, text))
                }
                Err(err) => {
                    diags.push(Diagnostic::new(
                        Severity::Alert,
                        "directive",
                        Some(span),
                        Frame::ParsingTight,
                        err.message,
                    ));
                    fatal += 1;
                    match err.stop {
                        Stop::Line => {}
                        Stop::File => break,
                        Stop::FileThenAbort => {
                            abort = true;
                            break;
                        }
                        Stop::Abort => return false,
                    }
                }
            }
            continue;
        }
        if !conds.active() {
            continue;
        }
        if abort_at_next_keyword {
            return false;
        }
        let stmt = Stmt { file: file.clone(), line: raw.number, words: lexed.words };
        let opens_section = grammar().section(stmt.keyword(), opts.version).is_some();
        if opens_section {
            // `${.SECTION}` is the section's name when it has one, else its keyword.
            section_name = if stmt.word(1).is_empty() { stmt.keyword() } else { stmt.word(1) }.to_string();
            in_section = true;
        } else if !in_section {
            let col = stmt.words.first().map_or(1, |w| w.col);
            diags.push(tight(file, raw.number, col, format!("unknown keyword '{}' out of section.", stmt.keyword())));
            fatal += 1;
            continue;
        } else if section_name == "global" {
            apply_env_directive(&stmt, vars);
        }
        let status = sink.on_line(stmt, opens_section, diags);
        fatal += u32::from(status.fatal);
        if status.abort {
            return false;
        }
    }
    if let Some(err) = missing_lf {
        let span = Span::new(file.clone(), err.line.max(last).max(1), (err.pos as u32).max(1), 1);
        diags.push(Diagnostic::new(Severity::Alert, "lexical", Some(span), err.frame(), err.message()));
    }
    if let Err((line, text)) = conds.finish(last) {
        diags.push(tight(file, line, 1, text));
        return false;
    }
    !abort
}

fn tight(file: &Arc<str>, line: u32, col: u32, text: String) -> Diagnostic {
    Diagnostic::new(Severity::Alert, "syntax", Some(Span::new(file.clone(), line, col, 1)), Frame::ParsingTight, text)
}

/// `setenv`, `presetenv`, `unsetenv` and `resetenv` change the variables the following lines
/// see; their argument errors are reported by the model.
fn apply_env_directive(stmt: &Stmt, vars: &mut Vars) {
    let args: Vec<&str> = stmt.args().iter().map(|w: &Word| w.text.as_str()).collect();
    match (stmt.keyword(), args.as_slice()) {
        ("setenv", [name, value]) if !name.is_empty() && !value.is_empty() => vars.set(name, value),
        ("presetenv", [name, value]) if !name.is_empty() && !value.is_empty() => vars.set_if_absent(name, value),
        ("unsetenv", names) => names.iter().for_each(|n| vars.unset(n)),
        ("resetenv", keep) => vars.reset_keeping(keep),
        _ => {}
    }
}
