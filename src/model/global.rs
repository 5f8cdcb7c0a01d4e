//! The `global` section and the sections that are checked by keyword only.
use crate::check::{Diagnostic, Frame};
use crate::config::ast::Stmt;
use crate::grammar::{grammar, KeywordLookup, SectionKind};

use super::address::{self, AddrContext};
use super::files;
use super::{Builder, Out};

/// Process-wide settings the runtime uses.
#[derive(Clone, Debug, Default)]
pub struct Global {
    pub daemon: bool,
    pub master_worker: bool,
    pub maxconn: Option<u32>,
    pub nbthread: Option<u32>,
    pub pidfile: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub chroot: Option<String>,
    pub ulimit_n: Option<u64>,
    pub hard_stop_after_ms: Option<u64>,
    pub bufsize: Option<u32>,
    pub quiet: bool,
    /// How many diagnostics came before `quiet` took effect.
    pub quiet_from: Option<usize>,
    pub zero_warning: bool,
    pub expose_experimental: bool,
    /// `log` lines, kept as written (target and arguments) for the logging module.
    pub logs: Vec<Vec<String>>,
    pub crt_base: Option<String>,
    pub ca_base: Option<String>,
    /// `stats socket` lines: each is a listener of its own.
    pub stats_sockets: u32,
    /// `localpeer`: the name of this process in `peers` sections.
    pub localpeer: Option<String>,
    /// A `peers` section names this process (`peer <localpeer> <addr>`): it listens.
    pub local_peer_listens: bool,
    /// Whether a `program` section may be used (master-worker mode).
    pub has_program: Option<crate::check::Span>,
}

/// Global keywords that take no argument (HAProxy refuses any).
const NO_ARGUMENT: &[&str] = &[
    "daemon",
    "noepoll",
    "nokqueue",
    "noevports",
    "nopoll",
    "busy-polling",
    "set-dumpable",
    "h2-workaround-bogus-websocket-clients",
    "insecure-fork-wanted",
    "insecure-setuid-wanted",
    "nosplice",
    "nogetaddrinfo",
    "noreuseport",
    "quiet",
    "zero-warning",
    "external-check",
    "strict-limits",
];

/// Global keywords HAProxy sets once: a second one is reported and ignored.
const SET_ONCE: &[&str] = &[
    "tune.runqueue-depth",
    "tune.maxpollevents",
    "tune.maxaccept",
    "tune.rcvbuf.client",
    "tune.rcvbuf.server",
    "tune.sndbuf.client",
    "tune.sndbuf.server",
    "uid",
    "gid",
    "user",
    "group",
    "maxconn",
    "maxconnrate",
    "maxsessrate",
    "maxsslrate",
    "maxpipes",
    "fd-hard-limit",
    "ulimit-n",
    "chroot",
    "pidfile",
    "unix-bind",
    "log-send-hostname",
    "server-state-base",
    "server-state-file",
    "spread-checks",
];

/// Keywords accepting HAProxy's `no`/`default` prefixes.
const NEGATABLE: &[&str] =
    &["option", "log", "busy-polling", "set-dumpable", "strict-limits", "insecure-fork-wanted", "numa-cpu-mapping"];

/// Applies the `no`/`default` prefix: returns the statement without it, or reports misuse.
pub(crate) fn strip_modifier(stmt: &Stmt, out: &mut Out) -> Option<(Stmt, bool)> {
    if stmt.keyword() != "no" && stmt.keyword() != "default" {
        return Some((stmt.clone(), false));
    }
    let negated = stmt.keyword() == "no";
    let mut inner = stmt.clone();
    inner.words.remove(0);
    // HAProxy shifts `default`'s words left without clearing the last slot, so the last
    // word appears twice (`default option X` reads as `option X X`).
    if !negated {
        if let Some(last) = inner.words.last().cloned() {
            inner.words.push(last);
        }
    }
    if !NEGATABLE.contains(&inner.keyword()) {
        out.alert(
            crate::check::Diagnostic::alert(
                "negation",
                &stmt.span(),
                "negation/default currently supported only for options, log, busy-polling, set-dumpable, strict-limits, insecure-fork-wanted and numa-cpu-mapping.",
            )
            .with_frame(crate::check::Frame::ParsingTight),
        );
        return None;
    }
    Some((inner, negated))
}

impl Builder {
    /// Looks a keyword up for `section`; reports unknown and removed keywords as HAProxy does.
    /// Returns true when the keyword exists here.
    pub(crate) fn known_keyword(&self, section: SectionKind, section_word: &str, stmt: &Stmt, out: &mut Out) -> bool {
        let kw = stmt.keyword();
        match grammar().keyword(section, kw, self.version()) {
            KeywordLookup::Known(info) if info.experimental && !self.config.global.expose_experimental => {
                let text = format!(
                    "'{kw}' directive is experimental, must be allowed via a global 'expose-experimental-directives'"
                );
                out.alert_at(stmt, 0, text);
                false
            }
            KeywordLookup::Known(_) => true,
            KeywordLookup::Removed { message } => {
                out.removed(stmt, &message);
                false
            }
            _ => {
                let suggestion = grammar().suggest_keyword(section, kw, self.version());
                // Each section's parser words this message its own way.
                let (frame, text) = match (section_word, suggestion) {
                    ("userlist", _) => (Frame::ParsingTight, format!("unknown keyword '{kw}' in 'users' section")),
                    ("fcgi-app", _) => (Frame::ParsingTight, format!("unknown keyword '{kw}' in 'fcgi-app' section")),
                    ("log-forward", _) => (Frame::Parsing, format!("unknown keyword '{kw}' in log-forward section.")),
                    (_, Some(best)) => (
                        Frame::Parsing,
                        format!("unknown keyword '{kw}' in '{section_word}' section; did you mean '{best}' maybe ?"),
                    ),
                    (_, None) => (Frame::Parsing, format!("unknown keyword '{kw}' in '{section_word}' section")),
                };
                out.alert(Diagnostic::alert("unknown-keyword", &stmt.span(), text).with_frame(frame));
                false
            }
        }
    }

    pub(crate) fn global_statement(&mut self, stmt: &Stmt, out: &mut Out) {
        let Some((stmt, _negated)) = strip_modifier(stmt, out) else {
            return;
        };
        let stmt = &stmt;
        if !self.known_keyword(SectionKind::Global, "global", stmt, out) {
            return;
        }
        let kw = stmt.keyword();
        if NO_ARGUMENT.contains(&kw) && stmt.words.len() > 1 {
            return out.alert_at(stmt, 1, format!("'{kw}' cannot handle unexpected argument '{}'.", stmt.word(1)));
        }
        if SET_ONCE.contains(&kw) && !self.global_seen.insert(kw.to_string()) {
            // HAProxy keeps the first value and goes on: an alert that does not fail the load.
            let d = Diagnostic::alert(
                crate::check::CONTINUE,
                &stmt.span(),
                format!("'{kw}' already specified. Continuing."),
            );
            return out.diags.push(d);
        }
        let g = &mut self.config.global;
        let arg = stmt.word(1);
        match stmt.keyword() {
            "daemon" => g.daemon = true,
            "master-worker" => g.master_worker = true,
            "quiet" => {
                g.quiet = true;
                // Messages already printed stay; later ones are hidden.
                g.quiet_from.get_or_insert(out.diags.len());
            }
            "zero-warning" => g.zero_warning = true,
            "expose-experimental-directives" => g.expose_experimental = true,
            "maxconn" if arg.is_empty() => out.alert_at(stmt, 0, "'maxconn' expects an integer argument."),
            "maxconn" => g.maxconn = Some(atoi(arg)),
            "nbthread" => match arg.parse::<u32>() {
                Ok(n) => g.nbthread = Some(n),
                Err(_) => {
                    out.alert_at(stmt, 1, format!("'nbthread' passed a missing or unparsable integer value in '{arg}'"))
                }
            },
            "pidfile" => g.pidfile = Some(arg.to_string()),
            "chroot" => g.chroot = Some(arg.to_string()),
            "ulimit-n" => g.ulimit_n = Some(u64::from(atoi(arg))),
            "crt-base" => g.crt_base = Some(arg.to_string()),
            "ca-base" => g.ca_base = Some(arg.to_string()),
            "log" => match address::parse_addr(arg, AddrContext::Log) {
                Ok(_) => g.logs.push(stmt.args().iter().map(|w| w.text.clone()).collect()),
                Err(e) => out.alert_at(stmt, 1, address::log_error_message(&e)),
            },
            "tune.bufsize" => g.bufsize = Some(atoi(arg)),
            "stats" if arg == "socket" => {
                let target = stmt.word(2);
                if target.is_empty() {
                    return out.alert_at(
                        stmt,
                        1,
                        "'stats socket' in global section expects an address or a path to a UNIX socket",
                    );
                }
                match address::parse_addr(target, AddrContext::Bind) {
                    Ok(_) => g.stats_sockets += 1,
                    Err(e) => {
                        return out.alert_at(stmt, 2, address::keyword_arg_error_message("stats socket", target, &e))
                    }
                }
                out.unsupported(stmt, "stats socket");
            }
            "localpeer" => g.localpeer = Some(arg.to_string()),
            "user" => match files::user_id(arg) {
                Some(uid) => g.uid = Some(uid),
                None => out.alert_at(stmt, 1, format!("cannot find user id for '{arg}' (0:Success)")),
            },
            "group" => match files::group_id(arg) {
                Some(gid) => g.gid = Some(gid),
                None => out.alert_at(stmt, 1, format!("cannot find group id for '{arg}' (0:Success)")),
            },
            "uid" => g.uid = Some(atoi(arg)),
            "gid" => g.gid = Some(atoi(arg)),
            "lua-load" | "lua-load-per-thread" => {
                let path = self.resolve_path(arg);
                if let Err(e) = std::fs::metadata(&path) {
                    out.alert_at(
                        stmt,
                        1,
                        format!(
                            "error in Lua file '{arg}': cannot open {arg}: {}",
                            crate::config::parser::io_reason(&e)
                        ),
                    );
                }
                out.unsupported(stmt, stmt.keyword());
            }
            "setenv" | "presetenv" if stmt.word(1).is_empty() || stmt.word(2).is_empty() => {
                out.alert_at(stmt, 0, format!("'{}' expects a name and a value.", stmt.keyword()));
            }
            "setenv" | "presetenv" | "unsetenv" | "resetenv" => {}
            kw => out.unsupported(stmt, kw),
        }
    }

    pub(crate) fn open_other(&mut self, stmt: &Stmt, out: &mut Out) {
        let kind = stmt.keyword();
        if kind == "program" {
            self.config.global.has_program.get_or_insert(stmt.span());
        }
        self.config.other_sections.push((kind.to_string(), stmt.word(1).to_string(), stmt.span()));
        out.unsupported(stmt, kind);
    }

    pub(crate) fn other_statement(&mut self, kind: &str, stmt: &Stmt, out: &mut Out) {
        let Some(section) = SectionKind::from_name(kind) else {
            return;
        };
        let Some((stmt, _negated)) = strip_modifier(stmt, out) else {
            return;
        };
        let stmt = &stmt;
        if !self.known_keyword(section, kind, stmt, out) {
            return;
        }
        match (kind, stmt.keyword()) {
            ("resolvers", "nameserver") => {
                let (name, target) = (stmt.word(1), stmt.word(2));
                if let Err(e) = address::parse_addr(target, AddrContext::Nameserver) {
                    out.alert_at(stmt, 2, address::nameserver_error_message(name, &e));
                }
            }
            ("peers", "peer") | ("peers", "server") => {
                let local = self.config.global.localpeer.clone().or_else(local_host_name);
                if local.as_deref() == Some(stmt.word(1)) && !stmt.word(2).is_empty() {
                    self.config.global.local_peer_listens = true;
                }
            }
            _ => {}
        }
    }
}

/// The host name, HAProxy's default local peer name.
fn local_host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string())
}

/// HAProxy reads many integers with atoi(): leading digits, junk ignored, 0 when none.
pub fn atoi(word: &str) -> u32 {
    let digits: String = word.trim_start().chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or(if digits.is_empty() { 0 } else { u32::MAX })
}
