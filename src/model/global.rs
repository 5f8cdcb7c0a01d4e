//! The `global` section and the sections that are checked by keyword only.
use std::borrow::Cow;

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
    /// `maxpipes`, and `nosplice` (no kernel splicing at all).
    pub maxpipes: Option<u32>,
    pub nosplice: bool,
    pub quiet: bool,
    /// How many diagnostics came before `quiet` took effect.
    pub quiet_from: Option<usize>,
    pub zero_warning: bool,
    pub expose_experimental: bool,
    /// `log` lines, kept as written (target and arguments) for the logging module.
    /// `log` targets, typed.
    pub logs: Vec<crate::logging::LogTarget>,
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

/// Global keywords whose extra arguments HAProxy refuses, with how many they take.
const MAX_ARGS: &[(&str, usize)] = &[
    ("daemon", 0),
    ("noepoll", 0),
    ("nokqueue", 0),
    ("noevports", 0),
    ("nopoll", 0),
    ("busy-polling", 0),
    ("set-dumpable", 0),
    ("h2-workaround-bogus-websocket-clients", 0),
    ("insecure-fork-wanted", 0),
    ("insecure-setuid-wanted", 0),
    ("nosplice", 0),
    ("nogetaddrinfo", 0),
    ("noreuseport", 0),
    ("quiet", 0),
    ("zero-warning", 0),
    ("external-check", 0),
    ("strict-limits", 0),
    ("ca-base", 1),
    ("crt-base", 1),
    ("chroot", 1),
    ("gid", 1),
    ("uid", 1),
    ("master-worker", 1),
    ("maxconn", 1),
    ("nbthread", 1),
    ("pidfile", 1),
    ("tune.bufsize", 1),
    ("ulimit-n", 1),
    ("maxpipes", 1),
];

/// Global keywords whose missing argument HAProxy reports, with its words.
const MISSING_ARGUMENT: &[(&str, &str)] = &[
    ("maxconn", "'maxconn' expects an integer argument."),
    ("pidfile", "'pidfile' expects a file name as an argument."),
    ("chroot", "'chroot' expects a directory as an argument."),
    ("crt-base", "global statement 'crt-base' expects a directory path as an argument."),
    ("ca-base", "global statement 'ca-base' expects a directory path as an argument."),
    ("tune.bufsize", "'tune.bufsize' expects an integer argument."),
    ("uid", "'uid' expects an integer argument."),
    ("gid", "'gid' expects an integer argument."),
    ("ulimit-n", "'ulimit-n' expects an integer argument."),
];

/// The thread limit of HAProxy's usual 64-bit builds.
const MAX_THREADS: u32 = 64;

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
pub(crate) fn strip_modifier<'a>(stmt: &'a Stmt, out: &mut Out) -> Option<(Cow<'a, Stmt>, bool)> {
    if stmt.keyword() != "no" && stmt.keyword() != "default" {
        return Some((Cow::Borrowed(stmt), false));
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
    Some((Cow::Owned(inner), negated))
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
        let Some((stmt, negated)) = strip_modifier(stmt, out) else {
            return;
        };
        let stmt = &stmt;
        if !self.known_keyword(SectionKind::Global, "global", stmt, out) {
            return;
        }
        let kw = stmt.keyword();
        if let Some(&(_, max)) = MAX_ARGS.iter().find(|(k, _)| *k == kw).filter(|(_, max)| stmt.words.len() > max + 1) {
            let extra = stmt.word(max + 1);
            return out.alert_at(stmt, max + 1, format!("'{kw}' cannot handle unexpected argument '{extra}'."));
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
        if let Some((_, text)) = MISSING_ARGUMENT.iter().find(|(k, _)| *k == kw).filter(|_| stmt.word(1).is_empty()) {
            return out.alert_at(stmt, 0, *text);
        }
        let g = &mut self.config.global;
        let arg = stmt.word(1);
        match stmt.keyword() {
            "daemon" => g.daemon = true,
            "master-worker" if !arg.is_empty() && arg != "no-exit-on-failure" => {
                out.alert_at(stmt, 1, "'master-worker' only supports 'no-exit-on-failure' option.")
            }
            "master-worker" => {
                g.master_worker = true;
                out.unsupported(stmt, kw);
            }
            "quiet" => {
                g.quiet = true;
                // Messages already printed stay; later ones are hidden.
                g.quiet_from.get_or_insert(out.diags.len());
            }
            "zero-warning" => g.zero_warning = true,
            "expose-experimental-directives" => g.expose_experimental = true,
            "maxconn" => g.maxconn = Some(atoi(arg)),
            "nbthread" => match arg.parse::<u32>() {
                Ok(n) if !(1..=MAX_THREADS).contains(&n) => {
                    out.alert_at(stmt, 1, format!("'nbthread' value must be between 1 and {MAX_THREADS} (was {n})"))
                }
                Ok(n) => g.nbthread = Some(n),
                Err(_) => {
                    out.alert_at(stmt, 1, format!("'nbthread' passed a missing or unparsable integer value in '{arg}'"))
                }
            },
            "pidfile" => g.pidfile = Some(arg.to_string()),
            "chroot" => g.chroot = Some(arg.to_string()),
            "ulimit-n" => g.ulimit_n = Some(u64::from(atoi(arg))),
            "hard-stop-after" => match super::units::parse_time(arg, super::units::TimeUnit::Ms) {
                Ok(t) => g.hard_stop_after_ms = Some(t.millis()),
                Err(e) => out.alert_at(stmt, 1, super::units::arg_time_error(kw, arg, &e)),
            },
            "crt-base" => g.crt_base = Some(arg.to_string()),
            "ca-base" => g.ca_base = Some(arg.to_string()),
            "log" => match super::logs::check_log_line(stmt, true, negated) {
                Ok(()) if negated => g.logs.clear(),
                Ok(()) => match super::logs::log_target(stmt) {
                    Ok(t) => g.logs.push(t),
                    Err(what) => out.unsupported(stmt, &what),
                },
                Err(text) => out.alert_at(stmt, 1, text),
            },
            "tune.bufsize" => g.bufsize = Some(atoi(arg)),
            "maxpipes" => g.maxpipes = Some(atoi(arg)),
            "nosplice" => g.nosplice = true,
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
            "ssl-dh-param-file" => {
                files::check_dh_param_file(self, stmt, out);
                out.unsupported(stmt, kw);
            }
            "localpeer" => {
                // Kept to know whether a peers section makes this process listen.
                g.localpeer = Some(arg.to_string());
                out.unsupported(stmt, kw);
            }
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
            "setenv" | "presetenv" if arg.is_empty() || stmt.word(2).is_empty() => {
                let d = Diagnostic::alert("config", &stmt.span(), format!("'{kw}' expects a name and a value."));
                out.alert(d.with_frame(Frame::ParsingTight));
            }
            // HAProxy tolerates one word more than the name and the value.
            "setenv" | "presetenv" if stmt.words.len() > 4 => {
                out.alert_at(stmt, 4, format!("'{kw}' cannot handle unexpected argument '{}'.", stmt.word(4)))
            }
            "unsetenv" if arg.is_empty() => {
                let d = Diagnostic::alert("config", &stmt.span(), "'unsetenv' expects at least one variable name.");
                out.alert(d.with_frame(Frame::ParsingTight));
            }
            "setenv" | "presetenv" | "unsetenv" | "resetenv" => {}
            kw => out.unsupported(stmt, kw),
        }
    }

    pub(crate) fn open_other(&mut self, stmt: &Stmt, out: &mut Out) {
        let kind = stmt.keyword();
        let name = stmt.word(1);
        let seen = self.config.other_sections.iter().any(|(k, n, _)| k == kind && n == name);
        match kind {
            "program" => {
                self.config.global.has_program.get_or_insert(stmt.span());
            }
            "resolvers" if name.is_empty() => {
                return out.abort(Diagnostic::alert(
                    "section-name",
                    &stmt.span(),
                    "missing name for resolvers section.",
                ))
            }
            "cache" if seen => {
                let d = Diagnostic::alert("duplicate-section", &stmt.span(), format!("Duplicate cache name '{name}'."));
                return out.abort(d.with_frame(Frame::ParsingTight));
            }
            "userlist" if seen => {
                let text = format!("ignoring duplicated userlist '{name}'.");
                out.warn(Diagnostic::warning("duplicate-section", &stmt.span(), text).with_frame(Frame::ParsingTight));
            }
            _ => {}
        }
        self.config.other_sections.push((kind.to_string(), name.to_string(), stmt.span()));
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
