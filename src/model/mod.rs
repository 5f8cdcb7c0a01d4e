//! AST → typed Config: units, addresses, defaults inheritance, cross references.
//!
//! The builder receives statements one at a time from the parser (as HAProxy's section
//! parsers do), so that fatal-error counting, aborts and `${...}` effects follow HAProxy's
//! order. Checks that need the whole configuration run afterwards in `post`, and only when
//! reading found no fatal error, as in HAProxy.
pub mod address;
pub mod balance;
pub mod files;
pub mod global;
pub mod logs;
pub mod post;
pub mod proxy;
pub mod regex;
pub mod rules;
pub mod server;
pub mod tcp_check;
#[cfg(test)]
mod typed_tests;
pub mod units;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::{Diagnostic, Severity, Span};
use crate::config::ast::Stmt;
use crate::config::lexer::Vars;
use crate::config::parser::{self, LineStatus, ParseOptions, Sink};
use crate::version::Version;

pub use global::Global;
pub use proxy::{Bind, Mode, Proxy, ProxyKind, Server};

/// The typed configuration the runtime consumes.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub global: Global,
    /// Frontends, backends and listens, in declaration order.
    pub proxies: Vec<Proxy>,
    /// Every `defaults` section, in order (named ones are found by name).
    pub defaults: Vec<Proxy>,
    /// Sections other than global and proxies (resolvers, peers, userlist...), by kind.
    pub other_sections: Vec<(String, String, Span)>,
}

impl Config {
    pub fn proxy(&self, name: &str) -> Option<&Proxy> {
        self.proxies.iter().find(|p| p.name == name)
    }

    /// Every listening address of every enabled proxy.
    pub fn has_listener(&self) -> bool {
        self.global.stats_sockets > 0
            || self.global.local_peer_listens
            || self.proxies.iter().any(|p| !p.disabled && !p.binds.is_empty())
    }
}

/// Options of one load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub version: Version,
    /// Paths relative to this folder are resolved against it (HAProxy: the current directory).
    pub base_dir: Option<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions { version: Version::NEWEST, base_dir: None }
    }
}

/// The result of loading: the config (as far as it could be built) and every diagnostic.
#[derive(Debug, Default)]
pub struct Loaded {
    pub config: Config,
    pub diagnostics: Vec<Diagnostic>,
    /// Reading found a fatal error (HAProxy's "Error(s) found in configuration file").
    pub parse_failed: Vec<String>,
    /// Reading stopped early (HAProxy's ERR_ABORT): no "Fatal errors found" line then.
    pub aborted: bool,
    /// How the checks after reading ended (they run only when reading found no error).
    pub post: post::PostVerdict,
}

impl Loaded {
    pub fn has_alert(&self) -> bool {
        self.diagnostics.iter().any(|d| d.is_fatal())
    }
}

/// Loads files (already expanded from directories) with `vars` as the environment.
pub fn load_files(paths: &[PathBuf], vars: &mut Vars, opts: &LoadOptions) -> Loaded {
    let sources = paths.iter().map(|p| (Arc::from(p.to_string_lossy().as_ref()), std::fs::read(p).map(Cow::Owned)));
    load_sources(sources, vars, opts)
}

/// Loads one config text (tests and fuzzing): no files other than those it references.
pub fn load_text(file: &str, text: &[u8], vars: &mut Vars, opts: &LoadOptions) -> Loaded {
    load_sources(std::iter::once((Arc::from(file), Ok(Cow::Borrowed(text)))), vars, opts)
}

/// Reads each source in order as HAProxy does, then runs the checks after reading when
/// nothing failed.
fn load_sources<'a>(
    sources: impl Iterator<Item = (Arc<str>, std::io::Result<Cow<'a, [u8]>>)>,
    vars: &mut Vars,
    opts: &LoadOptions,
) -> Loaded {
    let mut builder = Builder::new(opts.clone());
    let mut diags = Vec::new();
    let popts = ParseOptions { version: opts.version };
    let (mut failed_files, mut aborted) = (Vec::new(), false);
    for (name, bytes) in sources {
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                diags.push(open_error(Path::new(name.as_ref()), &e));
                aborted = true;
                break;
            }
        };
        let before = diags.len();
        let complete = parser::parse_text(&name, &bytes, &popts, vars, &mut builder, &mut diags);
        builder.end_file();
        if diags[before..].iter().any(|d| d.is_fatal()) {
            failed_files.push(name.to_string());
        }
        if !complete {
            aborted = true;
            break;
        }
    }
    let reading_ok = failed_files.is_empty() && !aborted;
    let mut loaded = Loaded {
        config: builder.finish(),
        diagnostics: diags,
        parse_failed: failed_files,
        aborted,
        post: post::PostVerdict::Ok,
    };
    if reading_ok {
        loaded.post = post::check(&mut loaded.config, opts, &mut loaded.diagnostics);
    }
    loaded
}

fn open_error(path: &Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic::new(
        Severity::Alert,
        "cannot-open",
        None,
        crate::check::Frame::Bare,
        format!("Cannot open configuration file/directory {} : {}", path.display(), parser::io_reason(e)),
    )
}

/// Which section the builder is in.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Current {
    None,
    Global,
    /// A proxy or defaults section; `None` when its header failed (HAProxy then answers every
    /// line with "'listen' or 'defaults' expected").
    Proxy(Option<ProxyRef>),
    /// Any other section, checked by keyword only.
    Other(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProxyRef {
    Defaults(usize),
    Proxy(usize),
}

/// Builds the Config line by line.
pub struct Builder {
    opts: LoadOptions,
    config: Config,
    current: Current,
    /// The defaults a new proxy inherits when it names none: the last anonymous or named one.
    last_defaults: Option<usize>,
    /// Proxies by name, among those with the frontend and the backend capability.
    frontend_names: HashMap<String, usize>,
    backend_names: HashMap<String, usize>,
    /// Global keywords already set, for those HAProxy sets only once.
    global_seen: std::collections::HashSet<String>,
}

impl Builder {
    pub fn new(opts: LoadOptions) -> Builder {
        Builder {
            opts,
            config: Config::default(),
            current: Current::None,
            last_defaults: None,
            frontend_names: HashMap::new(),
            backend_names: HashMap::new(),
            global_seen: Default::default(),
        }
    }

    fn version(&self) -> Version {
        self.opts.version
    }

    fn end_file(&mut self) {
        self.current = Current::None;
    }

    fn finish(self) -> Config {
        self.config
    }

    /// Resolves a referenced path as HAProxy does: relative to the current directory
    /// (or `base_dir`), after `*-base` prefixes were applied by the caller.
    pub fn resolve_path(&self, path: &str) -> PathBuf {
        match &self.opts.base_dir {
            Some(base) if !path.starts_with('/') => base.join(path),
            _ => PathBuf::from(path),
        }
    }
}

/// The statement outcome: diagnostics pushed and the status for the reader.
pub(crate) struct Out<'a> {
    pub diags: &'a mut Vec<Diagnostic>,
    pub status: LineStatus,
}

impl Out<'_> {
    pub fn alert(&mut self, d: Diagnostic) {
        self.status.fatal = true;
        self.diags.push(d);
    }

    pub fn abort(&mut self, d: Diagnostic) {
        self.status.fatal = true;
        self.status.abort = true;
        self.diags.push(d);
    }

    pub fn warn(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// An alert with HAProxy's usual framing: `parsing [file:line] : text`.
    pub fn alert_at(&mut self, stmt: &Stmt, word: usize, text: impl Into<String>) {
        self.alert(Diagnostic::alert("config", &stmt.span_of(word), text));
    }

    /// A removed keyword, with HAProxy's text (which carries its own separator).
    pub fn removed(&mut self, stmt: &Stmt, message: &str) {
        let args: Vec<&str> = stmt.args().iter().map(|w| w.text.as_str()).collect();
        let text = crate::grammar::render_removed_message(message, &args);
        self.alert(Diagnostic::alert("removed", &stmt.span(), text).with_frame(crate::check::Frame::ParsingJoined));
    }

    pub fn warn_at(&mut self, stmt: &Stmt, word: usize, text: impl Into<String>) {
        self.warn(Diagnostic::warning("config", &stmt.span_of(word), text));
    }

    /// A line valid in HAProxy that hapx cannot run yet: a warning of its own kind for `-c`,
    /// and a refusal when starting.
    pub fn unsupported(&mut self, stmt: &Stmt, what: &str) {
        let d = Diagnostic::new(
            Severity::Warning,
            crate::check::UNSUPPORTED,
            Some(stmt.span()),
            crate::check::Frame::Parsing,
            format!("'{what}' is not supported by hapx yet."),
        );
        self.diags.push(d);
    }
}

impl Sink for Builder {
    fn on_line(&mut self, stmt: Stmt, opens_section: bool, diags: &mut Vec<Diagnostic>) -> LineStatus {
        let mut out = Out { diags, status: LineStatus::default() };
        if opens_section {
            self.open_section(&stmt, &mut out);
        } else {
            self.statement(&stmt, &mut out);
        }
        out.status
    }
}

impl Builder {
    fn open_section(&mut self, stmt: &Stmt, out: &mut Out) {
        match stmt.keyword() {
            "global" => {
                if !stmt.word(1).is_empty() {
                    out.alert_at(
                        stmt,
                        1,
                        format!("'{}' cannot handle unexpected argument '{}'.", stmt.keyword(), stmt.word(1)),
                    );
                }
                self.current = Current::Global;
            }
            "defaults" | "frontend" | "backend" | "listen" => {
                let r = self.open_proxy(stmt, out);
                self.current = Current::Proxy(r);
            }
            other => {
                self.open_other(stmt, out);
                self.current = Current::Other(other.to_string());
            }
        }
    }

    fn statement(&mut self, stmt: &Stmt, out: &mut Out) {
        match self.current.clone() {
            Current::None => {}
            Current::Global => self.global_statement(stmt, out),
            Current::Proxy(None) => out.alert_at(stmt, 0, "'listen' or 'defaults' expected."),
            Current::Proxy(Some(r)) => self.proxy_statement(r, stmt, out),
            Current::Other(kind) => self.other_statement(&kind, stmt, out),
        }
    }
}

/// Resolves host names of a server or other address at load time (used by `post`).
pub fn resolve_all(addrs: &[address::Addr]) -> Result<Vec<SocketAddr>, String> {
    let mut all = Vec::new();
    for a in addrs {
        match address::resolve(a) {
            Ok(mut v) => all.append(&mut v),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(all)
}
