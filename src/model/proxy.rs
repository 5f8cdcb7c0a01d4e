//! Proxies: `defaults`, `frontend`, `backend` and `listen` sections.
use std::collections::BTreeSet;

use crate::check::{Diagnostic, Frame, Span};
use crate::config::ast::Stmt;
use crate::grammar::{grammar, KeywordLookup, Lookup, SectionKind};

use super::address::{self, AddrContext};
use super::global::{atoi, strip_modifier};
use super::server::ServerParams;
use super::units;
use super::{files, Builder, Out, ProxyRef};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl ProxyKind {
    fn from_word(word: &str) -> ProxyKind {
        match word {
            "frontend" => ProxyKind::Frontend,
            "backend" => ProxyKind::Backend,
            "listen" => ProxyKind::Listen,
            _ => ProxyKind::Defaults,
        }
    }

    pub fn section(self) -> SectionKind {
        match self {
            ProxyKind::Defaults => SectionKind::Defaults,
            ProxyKind::Frontend => SectionKind::Frontend,
            ProxyKind::Backend => SectionKind::Backend,
            ProxyKind::Listen => SectionKind::Listen,
        }
    }

    /// HAProxy's proxy_type_str(): how messages name the proxy.
    pub fn type_str(self) -> &'static str {
        match self {
            ProxyKind::Defaults => "defaults",
            ProxyKind::Frontend => "frontend",
            ProxyKind::Backend => "backend",
            ProxyKind::Listen => "proxy",
        }
    }

    /// HAProxy's proxy_cap_str(): a listen is a "proxy" there.
    pub fn cap_str(self) -> &'static str {
        match self {
            ProxyKind::Listen => "proxy",
            other => other.section_word(),
        }
    }

    /// The section keyword, as messages about the current section name it.
    pub fn section_word(self) -> &'static str {
        match self {
            ProxyKind::Defaults => "defaults",
            ProxyKind::Frontend => "frontend",
            ProxyKind::Backend => "backend",
            ProxyKind::Listen => "listen",
        }
    }

    pub fn is_frontend(self) -> bool {
        matches!(self, ProxyKind::Frontend | ProxyKind::Listen | ProxyKind::Defaults)
    }

    pub fn is_backend(self) -> bool {
        matches!(self, ProxyKind::Backend | ProxyKind::Listen | ProxyKind::Defaults)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Tcp,
    Http,
    Log,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tcp => "tcp",
            Mode::Http => "http",
            Mode::Log => "log",
        }
    }
}

/// Proxy timeouts in milliseconds; `None` when unset.
#[derive(Clone, Debug, Default)]
pub struct Timeouts {
    pub connect: Option<u64>,
    pub client: Option<u64>,
    pub server: Option<u64>,
    pub queue: Option<u64>,
    pub tunnel: Option<u64>,
    pub check: Option<u64>,
    pub client_fin: Option<u64>,
    pub server_fin: Option<u64>,
    pub http_request: Option<u64>,
    pub http_keep_alive: Option<u64>,
    pub tarpit: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Bind {
    pub span: Span,
    pub addrs: Vec<address::Addr>,
    /// Options as written after the address.
    pub options: Vec<String>,
    /// The options the runtime uses, typed.
    pub opts: BindOptions,
}

/// The `bind` options the runtime applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindOptions {
    /// `maxconn` (0: none).
    pub maxconn: u32,
    /// `backlog` (0: the default).
    pub backlog: u32,
    pub name: Option<String>,
    pub interface: Option<String>,
    /// `v6only` (true) or `v4v6` (false); `v6only` wins when both are given.
    pub v6only: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct Server {
    pub span: Span,
    pub name: String,
    pub addr: Option<address::Addr>,
    pub options: Vec<String>,
    /// `track [proxy/]server`
    pub track: Option<String>,
    pub resolved: Vec<std::net::SocketAddr>,
    /// Typed options (its proxy's `default-server` values, then its own).
    pub params: ServerParams,
}

#[derive(Clone, Debug)]
pub struct Proxy {
    pub kind: ProxyKind,
    pub name: String,
    pub span: Span,
    pub mode: Mode,
    /// Where the mode was set (in this proxy or the defaults it inherits).
    pub mode_span: Option<Span>,
    pub disabled: bool,
    pub binds: Vec<Bind>,
    pub servers: Vec<Server>,
    /// `default-server` options, inherited from defaults.
    pub default_server: Vec<String>,
    pub default_server_params: ServerParams,
    pub default_backend: Option<(String, Span)>,
    pub use_backends: Vec<(String, Span)>,
    /// `balance`, `hash-type` and `hash-balance-factor`.
    pub balance: super::balance::Balance,
    /// `tcp-check` rules, in order.
    pub tcp_check: Vec<super::tcp_check::TcpCheckRule>,
    pub timeouts: Timeouts,
    pub maxconn: Option<u32>,
    pub fullconn: Option<u32>,
    pub retries: Option<u32>,
    /// `option redispatch [<interval>]`: redispatch every Nth retry (N > 0), or on the Nth
    /// retry counted from the last (N < 0; -1, the default, is the last one).
    pub redispatch_interval: i32,
    /// `retry-on`: whether a failed connection is retried (`conn-failure`, the default).
    /// The other events of `retry-on` concern HTTP requests; HAProxy ignores them in TCP mode.
    pub retry_on_conn_failure: bool,
    /// Enabled `option` names (negated ones removed).
    pub options: BTreeSet<String>,
    /// `log` targets, typed.
    pub logs: Vec<crate::logging::LogTarget>,
    pub log_global: bool,
    pub log_format: Option<super::logs::LogFormatLine>,
    /// ACL names declared in this proxy.
    pub acls: BTreeSet<String>,
    /// Rule sets defined here (they matter for defaults sections).
    pub rules: RuleSets,
    /// How this section is referred to, when it is a defaults section.
    pub refs: DefaultsRefs,
}

/// The options the runtime acts on, typed once the proxy is read (the names in `options`
/// were checked against the grammar when their lines were read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyOptions {
    pub tcplog: bool,
    pub dontlognull: bool,
    pub log_separate_errors: bool,
    pub log_health_checks: bool,
    pub allbackups: bool,
    /// `option redispatch [N]`: the interval, None when off.
    pub redispatch: Option<i32>,
    pub tcp_check: bool,
    /// `option tcpka` or `clitcpka`, and `tcpka` or `srvtcpka`.
    pub client_keepalive: bool,
    pub server_keepalive: bool,
    pub splice_auto: bool,
    pub splice_request: bool,
    pub splice_response: bool,
}

impl Proxy {
    /// The options the runtime acts on.
    pub fn typed_options(&self) -> ProxyOptions {
        let on = |name: &str| self.options.contains(name);
        ProxyOptions {
            tcplog: on("tcplog"),
            dontlognull: on("dontlognull"),
            log_separate_errors: on("log-separate-errors"),
            log_health_checks: on("log-health-checks"),
            allbackups: on("allbackups"),
            redispatch: on("redispatch").then_some(self.redispatch_interval),
            tcp_check: on("tcp-check"),
            client_keepalive: on("tcpka") || on("clitcpka"),
            server_keepalive: on("tcpka") || on("srvtcpka"),
            splice_auto: on("splice-auto"),
            splice_request: on("splice-request"),
            splice_response: on("splice-response"),
        }
    }

    fn new(kind: ProxyKind, name: &str, span: Span) -> Proxy {
        Proxy {
            kind,
            name: name.to_string(),
            span,
            mode: Mode::Tcp,
            mode_span: None,
            disabled: false,
            binds: Vec::new(),
            servers: Vec::new(),
            default_server: Vec::new(),
            default_server_params: ServerParams::default(),
            default_backend: None,
            use_backends: Vec::new(),
            balance: Default::default(),
            tcp_check: Vec::new(),
            timeouts: Timeouts::default(),
            maxconn: None,
            fullconn: None,
            retries: None,
            redispatch_interval: -1,
            retry_on_conn_failure: true,
            options: BTreeSet::new(),
            logs: Vec::new(),
            log_global: false,
            log_format: None,
            acls: BTreeSet::new(),
            rules: RuleSets::default(),
            refs: DefaultsRefs::default(),
        }
    }

    /// A new proxy takes its settings from a defaults section (HAProxy copies them).
    fn inherit(kind: ProxyKind, name: &str, span: Span, from: &Proxy) -> Proxy {
        let mut p = from.clone();
        p.kind = kind;
        p.name = name.to_string();
        p.span = span;
        p.binds.clear();
        p.servers.clear();
        p.acls.clear();
        p.use_backends.clear();
        p.rules = RuleSets::default();
        p.refs = DefaultsRefs::default();
        p
    }
}

/// Proxy keywords whose extra arguments HAProxy refuses, with how many they take.
const MAX_ARGS: &[(&str, usize)] = &[
    ("disabled", 0),
    ("enabled", 0),
    ("mode", 1),
    ("maxconn", 1),
    ("retries", 1),
    ("fullconn", 1),
    ("default_backend", 1),
];

/// Keywords allowed in named defaults sections only.
const RULE_KEYWORDS: &[&str] =
    &["acl", "tcp-request", "tcp-response", "http-request", "http-response", "http-after-response"];

/// Options that take no argument (HAProxy refuses any).
const BARE_OPTIONS: &[&str] = &[
    "tcplog",
    "dontlognull",
    "allbackups",
    "log-separate-errors",
    "tcp-check",
    "tcpka",
    "clitcpka",
    "srvtcpka",
    "abortonclose",
    "http-server-close",
    "httpclose",
    "http-keep-alive",
    "nolinger",
    "log-health-checks",
    "splice-auto",
    "splice-request",
    "splice-response",
    "tcp-smart-accept",
    "tcp-smart-connect",
    "transparent",
    "persist",
    "prefer-last-server",
    "contstats",
    "socket-stats",
    "dontlog-normal",
    "http-buffer-request",
    "http-ignore-probes",
    "http-use-proxy-header",
    "checkcache",
    "independent-streams",
    "http-no-delay",
    "accept-invalid-http-request",
    "accept-invalid-http-response",
    "http-pretend-keepalive",
];

/// Which rule sets a defaults section defines (they restrict who may inherit from it).
#[derive(Clone, Copy, Debug, Default)]
pub struct RuleSets {
    pub http: bool,
    /// `tcp-request connection` or `tcp-request session`.
    pub tcp_l4_l5: bool,
    pub tcp_content: bool,
    pub tcp_response: bool,
}

impl RuleSets {
    pub fn any(self) -> bool {
        self.http || self.tcp_l4_l5 || self.tcp_content || self.tcp_response
    }
}

/// How a defaults section is referred to, for HAProxy's ambiguity checks.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultsRefs {
    pub explicit: bool,
    pub implicit: bool,
    pub used_by_frontend: bool,
    pub used_by_backend: bool,
}

/// A defaults section that defines rules may only be inherited by one kind of proxy.
fn rules_inheritance_error(kind: ProxyKind, d: &Proxy) -> Option<String> {
    if !d.rules.any() {
        return None;
    }
    let at = format!("(defaults section at {}:{})", d.span.file, d.span.line);
    Some(match kind {
        ProxyKind::Defaults => format!("a defaults section cannot inherit from a defaults section defining TCP/HTTP rules {at}."),
        ProxyKind::Listen => "a listen section cannot inherit from a defaults section defining TCP/HTTP rules.".to_string(),
        ProxyKind::Frontend if d.refs.used_by_backend => format!("frontends and backends cannot inherit from the same defaults section if it defines TCP/HTTP rules {at}."),
        ProxyKind::Backend if d.refs.used_by_frontend => format!("frontends and backends cannot inherit from the same defaults section if it defines TCP/HTTP rules {at}."),
        ProxyKind::Backend if d.rules.tcp_l4_l5 => format!("a backend section cannot inherit from a defaults section defining 'tcp-request connection' or 'tcp-request session' rules {at}."),
        ProxyKind::Frontend if d.rules.tcp_response => format!("a frontend section cannot inherit from a defaults section defining 'tcp-response content' rules {at}."),
        _ => return None,
    })
}

/// HAProxy's refusal of unexpected words on `tcp-check connect` and `tcp-check send*`.
fn tcp_check_args_error(stmt: &Stmt) -> Option<String> {
    let action = stmt.word(1);
    if action == "expect" {
        return tcp_check_expect_error(stmt);
    }
    let mut i = match action {
        "connect" => 2,
        "send" | "send-binary" | "send-lf" | "send-binary-lf" => 3,
        _ => return None,
    };
    while i < stmt.words.len() {
        let w = stmt.word(i);
        let takes_value = match (action, w) {
            ("connect", "comment" | "port" | "addr" | "sni" | "alpn" | "proto") => true,
            ("connect", "send-proxy" | "ssl" | "via-socks4" | "linger" | "default") => false,
            (_, "comment") => true,
            ("connect", _) => {
                return Some(format!(
                    "'tcp-check connect' : expects 'comment', 'port', 'addr', 'send-proxy', 'ssl', 'sni', 'alpn' or 'via-socks4', 'linger', 'default' but got '{w}' as argument.."
                ))
            }
            _ => return Some(format!("'tcp-check {action}' : expects 'comment' but got '{w}' as argument..")),
        };
        i += 1 + usize::from(takes_value);
    }
    None
}

/// `tcp-check expect [min-recv N] [!]<kind> <pattern> [options]`: HAProxy's refusal of a
/// word it does not expect (with its own quoting).
fn tcp_check_expect_error(stmt: &Stmt) -> Option<String> {
    const KINDS: &[&str] = &["string", "rstring", "binary", "rbinary", "string-lf", "binary-lf"];
    const WITH_VALUE: &[&str] =
        &["min-recv", "comment", "ok-status", "error-status", "tout-status", "on-success", "on-error", "status-code"];
    let refuse = |w: &str| {
        Some(format!(
            "'tcp-check expect' : 'only supports min-recv, '[!]binary', '[!]string', '[!]rstring', '[!]string-lf''[!]rbinary', '[!]binary-lf' or comment but got '{w}' as argument.."
        ))
    };
    let mut i = 2;
    let mut seen_kind = false;
    while i < stmt.words.len() {
        let w = stmt.word(i);
        let kind = w.strip_prefix('!').unwrap_or(w);
        if w == "!" {
            i += 1;
        } else if KINDS.contains(&kind) && !seen_kind {
            seen_kind = true;
            i += 2;
        } else if WITH_VALUE.contains(&w) {
            i += 2;
        } else {
            return refuse(w);
        }
    }
    None
}

/// Whether the runtime can use this address: TCP over IPv4 or IPv6.
fn is_tcp(a: &address::Addr) -> bool {
    matches!(a.family, address::Family::Unspec | address::Family::Inet | address::Family::Inet6)
}

/// Characters HAProxy allows in proxy and server names.
pub fn invalid_char(name: &str) -> Option<char> {
    name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
}

impl Builder {
    fn proxy_mut(&mut self, r: ProxyRef) -> Option<&mut Proxy> {
        match r {
            ProxyRef::Defaults(i) => self.config.defaults.get_mut(i),
            ProxyRef::Proxy(i) => self.config.proxies.get_mut(i),
        }
    }

    /// A section header `frontend|backend|listen <name> [from <defaults>]` or
    /// `defaults [<name>] [from <defaults>]`. Returns the proxy, or None when HAProxy
    /// would not create it.
    pub(crate) fn open_proxy(&mut self, stmt: &Stmt, out: &mut Out) -> Option<ProxyRef> {
        let kind = ProxyKind::from_word(stmt.keyword());
        let (a1, a2, a3) = (stmt.word(1), stmt.word(2), stmt.word(3));
        let mut name = a1;
        if kind != ProxyKind::Defaults {
            if a1.is_empty() {
                out.abort(Diagnostic::alert(
                    "proxy-header",
                    &stmt.span(),
                    format!("'{}' expects an <id> argument", stmt.keyword()),
                ));
                return None;
            }
            if let Some(c) = invalid_char(a1) {
                out.alert_at(stmt, 1, format!("character '{c}' is not permitted in '{}' name '{a1}'.", stmt.keyword()));
            }
            // HAProxy looks among frontends for a frontend or listen, among backends for a backend.
            let names = if kind == ProxyKind::Backend { &self.backend_names } else { &self.frontend_names };
            let clash = names.get(a1).and_then(|&i| self.config.proxies.get(i));
            if let Some(p) = clash {
                let text = format!(
                    "{} '{}' has the same name as {} '{}' declared at {}:{}.",
                    kind.cap_str(),
                    a1,
                    p.kind.type_str(),
                    p.name,
                    p.span.file,
                    p.span.line
                );
                out.alert(
                    Diagnostic::alert("duplicate-proxy", &stmt.span_of(1), text).with_frame(Frame::ParsingCapital),
                );
            }
            if (!a2.is_empty() && (a3.is_empty() || a2 != "from")) || stmt.words.len() > 4 {
                if stmt.words.len() > 4 {
                    out.alert_at(
                        stmt,
                        4,
                        format!("'{}' cannot handle unexpected argument '{}'.", stmt.keyword(), stmt.word(4)),
                    );
                }
                if kind.is_frontend() {
                    // HAProxy prints this alert without counting it as a fatal error.
                    out.diags.push(Diagnostic::alert(
                        crate::check::CONTINUE,
                        &stmt.span_of(2),
                        "please use the 'bind' keyword for listening addresses.",
                    ));
                }
                return None;
            }
        }
        let mut arg = 2;
        if kind == ProxyKind::Defaults && a1 == "from" && !a2.is_empty() && a3.is_empty() {
            arg = 1;
            name = "";
        }
        let mut base = if kind == ProxyKind::Defaults { None } else { self.last_defaults };
        if stmt.word(arg) == "from" {
            let wanted = stmt.word(arg + 1);
            let found: Vec<usize> =
                self.config.defaults.iter().enumerate().filter(|(_, d)| d.name == wanted).map(|(i, _)| i).collect();
            let Some(&first) = found.last() else {
                let text = format!("defaults section '{wanted}' not found for {} '{name}'.", kind.cap_str());
                out.abort(Diagnostic::alert("defaults-not-found", &stmt.span_of(arg + 1), text));
                return None;
            };
            let first_two = (
                found.first().and_then(|&i| self.config.defaults.get(i)),
                found.get(1).and_then(|&i| self.config.defaults.get(i)),
            );
            if let (Some(d1), Some(d2)) = first_two {
                let text = format!(
                    "ambiguous defaults section name '{wanted}' referenced by {} '{name}' exists at least at {}:{} and {}:{}.",
                    kind.cap_str(),
                    d1.span.file,
                    d1.span.line,
                    d2.span.file,
                    d2.span.line
                );
                out.alert_at(stmt, arg + 1, text);
            }
            base = Some(first);
            if let Some(d) = self.config.defaults.get_mut(first) {
                d.refs.explicit = true;
            }
        } else if let Some(d) = base.and_then(|i| self.config.defaults.get_mut(i)) {
            d.refs.implicit = true;
        }
        if let Some(d) = base.and_then(|i| self.config.defaults.get(i)) {
            if d.refs.explicit && d.refs.implicit {
                let text = format!(
                    "defaults section '{}' (declared at {}:{}) is explicitly referenced by another proxy and implicitly used here. To avoid any ambiguity don't mix both usage. Add a last defaults section not explicitly used or always use explicit references.",
                    d.name, d.span.file, d.span.line
                );
                out.diags.push(Diagnostic::alert(crate::check::CONTINUE, &stmt.span(), text));
            }
            if let Some(text) = rules_inheritance_error(kind, d) {
                out.abort(Diagnostic::alert("defaults-rules", &stmt.span(), text).with_frame(Frame::ParsingTight));
                return None;
            }
        }
        if let Some(d) = base.and_then(|i| self.config.defaults.get_mut(i)).filter(|d| d.rules.any()) {
            d.refs.used_by_frontend |= kind == ProxyKind::Frontend;
            d.refs.used_by_backend |= kind == ProxyKind::Backend;
        }
        let span = stmt.span_of(1);
        let proxy = match base.and_then(|i| self.config.defaults.get(i)) {
            Some(d) => Proxy::inherit(kind, name, span, d),
            None => Proxy::new(kind, name, span),
        };
        if kind == ProxyKind::Defaults {
            self.config.defaults.push(proxy);
            let i = self.config.defaults.len() - 1;
            self.last_defaults = Some(i);
            Some(ProxyRef::Defaults(i))
        } else {
            let i = self.config.proxies.len();
            if kind.is_frontend() {
                self.frontend_names.entry(name.to_string()).or_insert(i);
            }
            if kind.is_backend() {
                self.backend_names.entry(name.to_string()).or_insert(i);
            }
            self.config.proxies.push(proxy);
            Some(ProxyRef::Proxy(i))
        }
    }

    /// One keyword line in a proxy section.
    pub(crate) fn proxy_statement(&mut self, r: ProxyRef, stmt: &Stmt, out: &mut Out) {
        let Some((stmt, negated)) = strip_modifier(stmt, out) else {
            return;
        };
        let stmt = &stmt;
        let Some(proxy) = self.proxy_mut(r) else {
            return;
        };
        let kind = proxy.kind;
        let section_word = kind.section_word();
        let kw = stmt.keyword();
        let version = self.version();
        match grammar().keyword(kind.section(), kw, version) {
            KeywordLookup::Known(_) => {}
            KeywordLookup::Removed { message } => return out.removed(stmt, &message),
            KeywordLookup::WrongSection { legal_in } if legal_in.iter().any(|s| s.is_proxy()) => {
                return self.wrong_capability(r, stmt, &legal_in, out);
            }
            _ => {
                let text = match grammar().suggest_keyword(kind.section(), kw, version) {
                    Some(best) => {
                        format!("unknown keyword '{kw}' in '{section_word}' section; did you mean '{best}' maybe ?")
                    }
                    None => format!("unknown keyword '{kw}' in '{section_word}' section"),
                };
                return out.alert_at(stmt, 0, text);
            }
        }
        self.proxy_keyword(r, stmt, negated, out);
    }

    /// A proxy keyword used where the proxy lacks the capability (HAProxy warns and ignores
    /// it), or in defaults where it is not allowed (fatal).
    fn wrong_capability(&mut self, r: ProxyRef, stmt: &Stmt, legal_in: &[SectionKind], out: &mut Out) {
        let Some(proxy) = self.proxy_mut(r) else {
            return;
        };
        let kw = stmt.keyword().to_string();
        if proxy.kind == ProxyKind::Defaults {
            let text = format!("'{kw}' not allowed in 'defaults' section.");
            // The server parser frames its messages without "parsing".
            let frame = if kw.starts_with("server") { Frame::Located } else { Frame::Parsing };
            return out.alert(Diagnostic::alert("defaults", &stmt.span(), text).with_frame(frame));
        }
        let wants_backend = legal_in.contains(&SectionKind::Backend);
        let cap = if wants_backend { "backend" } else { "frontend" };
        if matches!(kw.as_str(), "server" | "server-template") {
            let text = format!(
                "parsing [{}:{}] : '{kw}' not allowed because {} '{}' has no {cap} capability.",
                stmt.file,
                stmt.line,
                proxy.kind.type_str(),
                proxy.name
            );
            return out.alert(Diagnostic::alert("capability", &stmt.span(), text).with_frame(Frame::Located));
        }
        let text =
            format!("'{kw}' ignored because {} '{}' has no {cap} capability.", proxy.kind.type_str(), proxy.name);
        out.warn_at(stmt, 0, text);
    }

    fn proxy_keyword(&mut self, r: ProxyRef, stmt: &Stmt, negated: bool, out: &mut Out) {
        let kw = stmt.keyword();
        let arg = stmt.word(1).to_string();
        if let Some((_, max)) = MAX_ARGS.iter().find(|(k, _)| *k == kw) {
            if stmt.words.len() > max + 1 {
                let extra = stmt.word(max + 1);
                return out.alert_at(stmt, max + 1, format!("'{kw}' cannot handle unexpected argument '{extra}'."));
            }
        }
        if RULE_KEYWORDS.contains(&kw) {
            if let Some(p) = self.proxy_mut(r).filter(|p| p.kind == ProxyKind::Defaults) {
                if p.name.is_empty() {
                    return out.alert_at(stmt, 0, format!("'{kw}' not allowed in anonymous 'defaults' section."));
                }
                let rules = &mut p.rules;
                match (kw, stmt.word(1)) {
                    ("tcp-request", "connection" | "session") => rules.tcp_l4_l5 = true,
                    ("tcp-request", "content") => rules.tcp_content = true,
                    ("tcp-response", "content") => rules.tcp_response = true,
                    ("http-request" | "http-response" | "http-after-response", _) => rules.http = true,
                    _ => {}
                }
            }
        }
        if let Some(text) = self.unknown_family_member(r, stmt) {
            return out.alert(Diagnostic::alert("unknown-keyword", &stmt.span_of(1), text.1).with_frame(text.0));
        }
        match kw {
            "bind" => self.parse_bind(r, stmt, out),
            "server" | "default-server" => self.parse_server(r, stmt, out),
            "mode" => {
                let mode = match arg.as_str() {
                    "tcp" => Mode::Tcp,
                    "http" => Mode::Http,
                    "health" if self.version() < crate::version::Version::new(2, 7) => {
                        return out.unsupported(stmt, "mode health")
                    }
                    "log" if self.version() >= crate::version::Version::new(3, 1) => Mode::Log,
                    _ => return out.alert_at(stmt, 1, format!("unknown proxy mode '{arg}'.")),
                };
                // Whether hapx can run it depends on the mode each proxy ends up with,
                // which `post` reports (a defaults section's mode may be overridden).
                if let Some(p) = self.proxy_mut(r) {
                    p.mode = mode;
                    p.mode_span = Some(stmt.span());
                }
            }
            "timeout" => self.parse_timeout(r, stmt, out),
            "option" => self.parse_option(r, stmt, negated, out),
            "balance" if arg.is_empty() => {
                // HAProxy 2.6: no algorithm means roundrobin.
                if let Some(p) = self.proxy_mut(r) {
                    p.balance.algorithm = super::balance::Algorithm::RoundRobin;
                }
            }
            "balance" => {
                let words: Vec<&str> = stmt.args().iter().map(|w| w.text.as_str()).collect();
                let algorithm = match super::balance::parse_algorithm(&words, self.version()) {
                    Ok(a) => a,
                    Err((i, text)) => return out.alert_at(stmt, i, text),
                };
                if !algorithm.runnable() {
                    out.unsupported(stmt, &format!("balance {}", algorithm.name()));
                }
                if let Some(p) = self.proxy_mut(r) {
                    p.balance.algorithm = algorithm;
                }
            }
            "tcp-check" => {
                if let Some(text) = tcp_check_args_error(stmt) {
                    return out.alert_at(stmt, 1, text);
                }
                let words: Vec<&str> = stmt.words.iter().map(|w| w.text.as_str()).collect();
                let Some(p) = self.proxy_mut(r) else { return };
                match super::tcp_check::parse_rule(&words, &p.tcp_check) {
                    Ok(rule) => p.tcp_check.push(rule),
                    Err(super::tcp_check::Refusal::Invalid(text)) => out.alert_at(stmt, 1, text),
                    // What the check engine cannot run yet (set-var, ssl, ...).
                    Err(super::tcp_check::Refusal::Unsupported(what)) => out.unsupported(stmt, &what),
                }
            }
            "hash-type" => {
                let words: Vec<&str> = stmt.args().iter().map(|w| w.text.as_str()).collect();
                match super::balance::parse_hash_type(&words, self.version()) {
                    Ok(t) => {
                        if let Some(p) = self.proxy_mut(r) {
                            p.balance.hash_type = t;
                        }
                    }
                    Err((i, text)) => out.alert_at(stmt, i, text),
                }
            }
            "hash-balance-factor" => {
                let factor = units::atoi(&arg);
                if factor != 0 && factor <= 100 {
                    return out.alert_at(stmt, 1, "'hash-balance-factor' must be 0 or greater than 100.");
                }
                if let Some(p) = self.proxy_mut(r) {
                    p.balance.hash_balance_factor = u32::try_from(factor).ok();
                }
            }
            "default_backend" => {
                if arg.is_empty() {
                    return out.alert_at(stmt, 0, format!("'{kw}' expects a backend name."));
                }
                if let Some(p) = self.proxy_mut(r) {
                    p.default_backend = Some((arg, stmt.span_of(1)));
                }
            }
            "use_backend" => {
                if arg.is_empty() {
                    return out.alert_at(stmt, 0, format!("'{kw}' expects a backend name."));
                }
                if stmt.words.len() > 2 {
                    if let Some(p) = self.proxy_ref(r) {
                        super::rules::check_rule(self, p, stmt, out);
                    }
                    out.unsupported(stmt, "use_backend with a condition");
                } else if arg.contains("%[") {
                    out.unsupported(stmt, "use_backend with a dynamic name");
                }
                if let Some(p) = self.proxy_mut(r) {
                    p.use_backends.push((arg, stmt.span_of(1)));
                }
            }
            "maxconn" | "fullconn" | "retries" => {
                if arg.is_empty() {
                    return out.alert_at(stmt, 0, format!("'{kw}' expects an integer argument."));
                }
                let v = atoi(&arg);
                if let Some(p) = self.proxy_mut(r) {
                    match kw {
                        "maxconn" => p.maxconn = Some(v),
                        "fullconn" => p.fullconn = Some(v),
                        _ => p.retries = Some(v),
                    }
                }
            }
            "retry-on" => {
                let words: Vec<&str> = stmt.args().iter().map(|w| w.text.as_str()).collect();
                if words.is_empty() {
                    return out.alert_at(
                        stmt,
                        0,
                        format!("'{kw}' needs at least one keyword to specify when to retry"),
                    );
                }
                let mut conn_failure = false;
                for (i, w) in words.iter().enumerate() {
                    match *w {
                        "none" if words.len() == 1 => {}
                        "none" => {
                            return out.alert_at(stmt, i + 1, format!("'{kw}' 'none' keyworld only usable alone"));
                        }
                        "conn-failure" | "all-retryable-errors" => conn_failure = true,
                        "empty-response" | "junk-response" | "response-timeout" | "0rtt-rejected" | "401" | "403"
                        | "404" | "408" | "421" | "425" | "429" | "500" | "501" | "502" | "503" | "504" => {}
                        other => return out.alert_at(stmt, i + 1, format!("'{kw}': unknown keyword '{other}'")),
                    }
                }
                if let Some(p) = self.proxy_mut(r) {
                    p.retry_on_conn_failure = conn_failure;
                }
            }
            "disabled" | "enabled" => {
                if let Some(p) = self.proxy_mut(r) {
                    p.disabled = kw == "disabled";
                }
            }
            "log" => {
                if let Err(text) = super::logs::check_log_line(stmt, false, negated) {
                    return out.alert_at(stmt, 1, text);
                }
                let Some(p) = self.proxy_mut(r) else { return };
                if negated {
                    p.logs.clear();
                    p.log_global = false;
                } else if arg == "global" {
                    p.log_global = true;
                } else {
                    match super::logs::log_target(stmt) {
                        Ok(t) => p.logs.push(t),
                        Err(what) => out.unsupported(stmt, &what),
                    }
                }
            }
            "log-format" => {
                let line = super::logs::LogFormatLine::new(&arg);
                match &line.compiled {
                    Ok(_) => out.unsupported(stmt, kw),
                    Err(e) => out.unsupported(stmt, &format!("{kw} ({e})")),
                }
                if let Some(p) = self.proxy_mut(r) {
                    p.log_format = Some(line);
                }
            }
            "acl" => {
                let criterion = stmt.word(2);
                let fetch = criterion.split(['(', ',']).next().unwrap_or("");
                // Only fetches the grammar knows from a later version are refused: the
                // registry does not list every layer-7 fetch and ACL alias.
                if let Lookup::NotInVersion { .. } = grammar().fetch(fetch, self.version()) {
                    let text = format!("error detected while parsing ACL '{arg}' : unknown fetch method '{fetch}' in ACL expression '{criterion}'.");
                    return out.alert_at(stmt, 2, text);
                }
                // A failed ACL is not declared: later uses get "no such ACL", as in HAProxy.
                if files::check_acl_files(self, stmt, out) {
                    if let Some(p) = self.proxy_mut(r) {
                        p.acls.insert(arg);
                    }
                }
                out.unsupported(stmt, kw);
            }
            "errorfile" => {
                files::check_errorfile(self, stmt, out);
                out.unsupported(stmt, kw);
            }
            "tcp-request"
            | "tcp-response"
            | "http-request"
            | "http-response"
            | "http-after-response"
            | "use-server" => {
                if let Some(p) = self.proxy_ref(r) {
                    super::rules::check_rule(self, p, stmt, out);
                }
                out.unsupported(stmt, kw);
            }
            _ => out.unsupported(stmt, kw),
        }
    }

    /// `tcp-request nope`, `stats nope`...: a family keyword whose second word the grammar
    /// does not know here, with HAProxy's message for that family.
    fn unknown_family_member(&self, r: ProxyRef, stmt: &Stmt) -> Option<(Frame, String)> {
        let (kw, sub) = (stmt.keyword(), stmt.word(1));
        if !matches!(kw, "tcp-request" | "tcp-response" | "stats") {
            return None;
        }
        let p = self.proxy_ref(r)?;
        let full = format!("{kw} {sub}");
        if matches!(grammar().keyword(p.kind.section(), &full, self.version()), KeywordLookup::Known(_)) {
            return None;
        }
        let px = format!("{} '{}'", p.kind.type_str(), p.name);
        Some(match kw {
            "tcp-request" => (Frame::Parsing, format!("'tcp-request' expects 'inspect-delay', 'connection', or 'content' in {px} (got '{sub}')")),
            "tcp-response" => (Frame::Parsing, format!("'tcp-response' expects 'inspect-delay' or 'content' in {px} (got '{sub}')")),
            _ => (
                Frame::ParsingTight,
                format!("unknown stats parameter '{sub}', expects 'admin', 'uri', 'realm', 'auth', 'scope', 'enable', 'hide-version', 'show-node', 'show-desc' or 'show-legends'."),
            ),
        })
    }

    fn proxy_kind(&self, r: ProxyRef) -> ProxyKind {
        self.proxy_ref(r).map_or(ProxyKind::Listen, |p| p.kind)
    }

    fn proxy_ref(&self, r: ProxyRef) -> Option<&Proxy> {
        match r {
            ProxyRef::Defaults(i) => self.config.defaults.get(i),
            ProxyRef::Proxy(i) => self.config.proxies.get(i),
        }
    }

    fn parse_timeout(&mut self, r: ProxyRef, stmt: &Stmt, out: &mut Out) {
        let name = stmt.word(1).to_string();
        let exists = matches!(
            grammar().keyword(self.proxy_kind(r).section(), &format!("timeout {name}"), self.version()),
            KeywordLookup::Known(_)
        );
        if name.is_empty() || !exists {
            let text = format!(
                "'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', 'http-request', 'tunnel', 'tarpit', 'client-fin' and 'server-fin' (got '{name}')"
            );
            return out.alert_at(stmt, 1, text);
        }
        let ms = match units::parse_proxy_timeout(&name, stmt.word(2)) {
            Ok(t) => {
                if let Some(w) = t.warning.clone() {
                    out.warn(Diagnostic::warning("time-junk", &stmt.span_of(2), w).with_frame(Frame::Bare));
                }
                t.millis()
            }
            Err(text) => return out.alert_at(stmt, 2, text),
        };
        if !stmt.word(3).is_empty() {
            return out.alert_at(
                stmt,
                3,
                format!("'timeout {name}' cannot handle unexpected argument '{}'.", stmt.word(3)),
            );
        }
        let Some(p) = self.proxy_mut(r) else { return };
        let t = &mut p.timeouts;
        let slot = match name.as_str() {
            "client" => &mut t.client,
            "server" => &mut t.server,
            "connect" => &mut t.connect,
            "check" => &mut t.check,
            "queue" => &mut t.queue,
            "tunnel" => &mut t.tunnel,
            "client-fin" => &mut t.client_fin,
            "server-fin" => &mut t.server_fin,
            "http-request" => &mut t.http_request,
            "http-keep-alive" => &mut t.http_keep_alive,
            "tarpit" => &mut t.tarpit,
            // Valid in the targeted version, but nothing here would use it.
            other => return out.unsupported(stmt, &format!("timeout {other}")),
        };
        *slot = Some(ms);
    }

    fn parse_option(&mut self, r: ProxyRef, stmt: &Stmt, negated: bool, out: &mut Out) {
        let name = stmt.word(1).to_string();
        let version = self.version();
        let Some(proxy) = self.proxy_mut(r) else {
            return;
        };
        let section = proxy.kind.section();
        match grammar().option(section, &name, version) {
            KeywordLookup::Known(info) => {
                if BARE_OPTIONS.contains(&name.as_str()) && stmt.words.len() > 2 {
                    let text = format!("'option {name}' cannot handle unexpected argument '{}'.", stmt.word(2));
                    return out.alert_at(stmt, 2, text);
                }
                if negated && !info.negatable {
                    let text = format!("negation/default is not supported for option '{name}'.");
                    return out
                        .alert(Diagnostic::alert("negation", &stmt.span_of(1), text).with_frame(Frame::ParsingTight));
                }
            }
            KeywordLookup::Removed { message } => return out.removed(stmt, &message),
            KeywordLookup::WrongSection { .. } => {
                let kind = proxy.kind;
                if kind == ProxyKind::Defaults {
                    return;
                }
                let cap = if kind.is_frontend() { "backend" } else { "frontend" };
                let text = format!(
                    "'option {name}' ignored because {} '{}' has no {cap} capability.",
                    kind.type_str(),
                    proxy.name
                );
                return out.warn_at(stmt, 1, text);
            }
            KeywordLookup::Unknown | KeywordLookup::NotInVersion { .. } => {
                let text = match grammar().suggest_option(&name, version) {
                    Some(best) => format!("unknown option '{name}'; did you mean '{best}' maybe ?"),
                    None => format!("unknown option '{name}'."),
                };
                return out.alert_at(stmt, 1, text);
            }
        }
        let Some(proxy) = self.proxy_mut(r) else {
            return;
        };
        if negated {
            proxy.options.remove(&name);
        } else {
            proxy.options.insert(name.clone());
        }
        if name == "redispatch" {
            let interval = stmt.word(2);
            proxy.redispatch_interval = if negated || interval.is_empty() { -1 } else { super::units::atoi(interval) };
            if proxy.redispatch_interval == 0 {
                // `option redispatch 0` turns redispatching off.
                proxy.options.remove(&name);
            }
        }
        if !matches!(
            name.as_str(),
            "tcplog"
                | "dontlognull"
                | "redispatch"
                | "allbackups"
                | "log-separate-errors"
                | "log-health-checks"
                | "tcp-check"
                | "tcpka"
                | "clitcpka"
                | "srvtcpka"
                | "splice-auto"
                | "splice-request"
                | "splice-response"
        ) {
            out.unsupported(stmt, &format!("option {name}"));
        }
    }

    fn parse_bind(&mut self, r: ProxyRef, stmt: &Stmt, out: &mut Out) {
        let addr_word = stmt.word(1);
        let Some(proxy) = self.proxy_mut(r) else {
            return;
        };
        let context = format!("'bind {addr_word}' in section '{}'", proxy.kind.section_word());
        if addr_word.is_empty() {
            return out.alert_at(
                stmt,
                0,
                format!(
                    "'{}' expects {{<path>|[addr1]:port1[-end1]}}{{,[addr]:port[-end]}}... as arguments.",
                    stmt.keyword()
                ),
            );
        }
        let addrs = match address::parse_addr(addr_word, AddrContext::Bind) {
            Ok(a) => a,
            Err(e) => return out.alert_at(stmt, 1, format!("'{}' : {}", stmt.keyword(), e.message())),
        };
        if addrs.iter().any(|a| matches!(a.family, address::Family::Fd | address::Family::SockPair)) {
            out.unsupported(stmt, "bind on an inherited file descriptor or socket pair");
        }
        let options: Vec<String> = stmt.words.iter().skip(2).map(|w| w.text.clone()).collect();
        let mut i = 2;
        let mut unsupported = false;
        let mut bind_opts = BindOptions::default();
        while i < stmt.words.len() {
            let opt = stmt.word(i);
            let Lookup::Known(info) = grammar().bind_option(opt, self.version()) else {
                let text = match grammar().suggest_bind_option(opt, self.version()) {
                    Some(best) => format!("{context} : unknown keyword '{opt}'; did you mean '{best}' maybe ?"),
                    None => format!("{context} : unknown keyword '{opt}'."),
                };
                return out.alert_at(stmt, i, text);
            };
            let nargs = info.args.max_args().unwrap_or(1);
            if nargs > 0 && i + nargs >= stmt.words.len() {
                return out.alert_at(stmt, i, format!("{context} : '{opt}' : missing value."));
            }
            if matches!(opt, "crt" | "ca-file" | "crl-file" | "crt-list") {
                files::check_cert_file(self, &context, stmt, i, out);
            }
            let value = stmt.word(i + 1);
            // HAProxy reads both numbers with atol and refuses only negative ones.
            let number = |min: &str| match units::atol(value) {
                n if n < 0 => Err(format!("{context} : '{opt}' : invalid value {n}, must be {min}")),
                n => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
            };
            match opt {
                "maxconn" => match number(">= 0") {
                    Ok(n) => bind_opts.maxconn = n,
                    Err(text) => return out.alert_at(stmt, i, text),
                },
                "backlog" => match number("> 0") {
                    Ok(n) => bind_opts.backlog = n,
                    Err(text) => return out.alert_at(stmt, i, text),
                },
                "name" => bind_opts.name = Some(value.to_string()),
                "interface" => bind_opts.interface = Some(value.to_string()),
                "v6only" => bind_opts.v6only = Some(true),
                "v4v6" => bind_opts.v6only = Some(bind_opts.v6only.unwrap_or(false)),
                // Everything else (ssl, accept-proxy, ...) the runtime cannot do yet.
                _ => unsupported = true,
            }
            i += 1 + nargs;
        }
        if unsupported {
            out.unsupported(stmt, "bind options");
        }
        let span = stmt.span_of(1);
        if let Some(p) = self.proxy_mut(r) {
            p.binds.push(Bind { span, addrs, options, opts: bind_opts });
        }
    }

    fn parse_server(&mut self, r: ProxyRef, stmt: &Stmt, out: &mut Out) {
        let kw = stmt.keyword();
        let is_default = kw == "default-server";
        let Some(proxy) = self.proxy_mut(r) else {
            return;
        };
        let pname = proxy.name.clone();
        let kind = proxy.kind;
        if !is_default && kind == ProxyKind::Defaults {
            let text = format!("'{kw}' not allowed in 'defaults' section.");
            return out.alert(Diagnostic::alert("defaults", &stmt.span(), text).with_frame(Frame::Located));
        }
        let name = stmt.word(1).to_string();
        let bare = |text: String| Diagnostic::alert("server", &stmt.span(), text).with_frame(Frame::Located);
        // The server parser prefixes its messages with the server, built only on error.
        let located = |text: String| bare(format!("'{kw} {pname}/{name}' : {text}"));
        let mut i = 1;
        let mut addr = None;
        if !is_default {
            if stmt.word(2).is_empty() {
                // Said before the server exists, so without its name.
                return out.alert(bare(format!("'{kw}' expects <name> and <addr>[:<port>] as arguments.")));
            }
            if let Some(c) = invalid_char(&name) {
                return out.alert(located(format!("character '{c}' is not permitted in {kw} name '{name}'.")));
            }
            let word = stmt.word(2);
            match address::parse_addr(word, AddrContext::Server) {
                Ok(mut a) if !a.is_empty() => {
                    let first = a.remove(0);
                    if first.family == address::Family::Unix {
                        if stmt.words.iter().any(|w| w.text == "check") {
                            out.unsupported(stmt, "health checks of a UNIX socket server");
                        }
                    } else if !is_tcp(&first) {
                        out.unsupported(stmt, "server on an abstract socket or socket pair");
                    } else if !matches!(first.ports, address::PortSpec::One(p) if p > 0) {
                        out.unsupported(stmt, "server without a fixed port");
                    }
                    addr = Some(first);
                }
                Ok(_) => {}
                Err(e) => return out.alert(located(e.message())),
            }
            i = 3;
        }
        let mut track = None;
        let mut unsupported = Vec::new();
        let mut params = self.proxy_ref(r).map(|p| p.default_server_params.clone()).unwrap_or_default();
        while i < stmt.words.len() {
            let opt = stmt.word(i);
            let Lookup::Known(info) = grammar().server_option(opt, self.version()) else {
                let text = match grammar().suggest_server_option(opt, self.version()) {
                    Some(best) => {
                        format!("unknown keyword '{opt}'; did you mean '{best}' maybe ?")
                    }
                    None => format!("unknown keyword '{opt}'."),
                };
                return out.alert(located(text));
            };
            if is_default && !info.default_server {
                return out.alert(located(format!("'{opt}' option is not accepted in default-server sections")));
            }
            let nargs = info.args.max_args().unwrap_or(1);
            if nargs > 0 && i + nargs >= stmt.words.len() {
                return out.alert(located(format!("'{opt}' expects an argument.")));
            }
            let value = if nargs > 0 { stmt.word(i + 1) } else { "" };
            if opt == "source" {
                // `source <addr> [usesrc <what>] [interface <name>]`: typed here, with 2.6's
                // texts; the words it owns are skipped below.
                match source_option(value, stmt, i + 2) {
                    Ok((addr, extra, unsupported_parts)) => {
                        params.source = addr;
                        unsupported.extend(unsupported_parts);
                        i += extra;
                    }
                    Err((text, unlocated)) => {
                        out.alert(located(text));
                        if let Some(text) = unlocated {
                            out.alert(Diagnostic::alert("server", &stmt.span(), text).with_frame(Frame::Bare));
                        }
                        return;
                    }
                }
            } else if let Err(text) = params.apply(opt, value, &name) {
                return out.alert(located(text));
            }
            match opt {
                "track" => {
                    track = Some(value.to_string());
                    unsupported.push(opt.to_string());
                }
                // What the runtime does. `maxqueue` bounds a server's own queue, which only
                // persistence fills: without it (hapx has none yet) HAProxy ignores it too.
                "check" | "inter" | "fastinter" | "downinter" | "rise" | "fall" | "port" | "addr" | "weight"
                | "maxconn" | "maxqueue" | "minconn" | "backup" | "disabled" | "enabled" | "id" | "slowstart"
                | "source" | "init-state" | "on-marked-down" | "on-marked-up" | "observe" | "error-limit"
                | "on-error" => {}
                other => unsupported.push(other.to_string()),
            }
            i += 1 + nargs;
        }
        if !unsupported.is_empty() {
            out.unsupported(stmt, &format!("{kw} option {}", unsupported.join(", ")));
        }
        let options: Vec<String> =
            stmt.words.iter().skip(if is_default { 1 } else { 3 }).map(|w| w.text.clone()).collect();
        let Some(p) = self.proxy_mut(r) else { return };
        if is_default {
            p.default_server = options;
            p.default_server_params = params;
        } else {
            p.servers.push(Server { span: stmt.span(), name, addr, options, track, resolved: Vec::new(), params });
        }
    }
}

/// A server's `source` option from `value` on, with the `usesrc` and `interface` words after
/// it (from `next`): the typed address (None for a port range, which the runtime cannot
/// bind), how many extra words it took, and what of it the runtime cannot do. Errors are
/// 2.6's texts, to be framed by the server.
#[allow(clippy::type_complexity)]
fn source_option(
    value: &str,
    stmt: &Stmt,
    next: usize,
) -> Result<(Option<std::net::SocketAddr>, usize, Vec<String>), (String, Option<String>)> {
    let addrs = address::parse_addr(value, AddrContext::Source)
        .map_err(|e| (address::server_option_error_message("source", value, &e), None))?;
    let mut unsupported = Vec::new();
    let typed = addrs.first().and_then(|a| {
        let ip = match a.host {
            address::Host::Ip(ip) => Some(ip),
            _ => a.resolved,
        }?;
        match a.ports {
            address::PortSpec::One(port) => Some(std::net::SocketAddr::new(ip, port)),
            address::PortSpec::None => Some(std::net::SocketAddr::new(ip, 0)),
            _ => {
                unsupported.push("source port range".to_string());
                None
            }
        }
    });
    let mut extra = 0;
    loop {
        let (word, arg) = (stmt.word(next + extra), stmt.word(next + extra + 1));
        match word {
            "usesrc" => {
                let transparent = matches!(arg, "client" | "clientip") || arg.starts_with("hdr_ip(");
                if !transparent {
                    if let Err(e) = address::parse_addr(arg, AddrContext::Usesrc) {
                        let (first, second) = address::usesrc_error_messages(arg, &e);
                        return Err((first, Some(second)));
                    }
                }
                unsupported.push("source usesrc".to_string());
            }
            "interface" => unsupported.push("source interface".to_string()),
            _ => return Ok((typed, extra, unsupported)),
        }
        extra += 2;
    }
}
