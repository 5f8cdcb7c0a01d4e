//! Proxies: `defaults`, `frontend`, `backend` and `listen` sections.
use std::collections::BTreeSet;

use crate::check::{Diagnostic, Frame, Span};
use crate::config::ast::Stmt;
use crate::grammar::{grammar, KeywordLookup, Lookup, SectionKind};

use super::address::{self, AddrContext};
use super::global::{atoi, strip_modifier};
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

    /// HAProxy's proxy_cap_str(): frontend, backend, listen.
    pub fn cap_str(self) -> &'static str {
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
    pub default_backend: Option<(String, Span)>,
    pub use_backends: Vec<(String, Span)>,
    pub balance: Option<Vec<String>>,
    pub timeouts: Timeouts,
    pub maxconn: Option<u32>,
    pub fullconn: Option<u32>,
    pub retries: Option<u32>,
    /// Enabled `option` names (negated ones removed).
    pub options: BTreeSet<String>,
    pub logs: Vec<Vec<String>>,
    pub log_global: bool,
    pub log_format: Option<String>,
    /// ACL names declared in this proxy.
    pub acls: BTreeSet<String>,
}

impl Proxy {
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
            default_backend: None,
            use_backends: Vec::new(),
            balance: None,
            timeouts: Timeouts::default(),
            maxconn: None,
            fullconn: None,
            retries: None,
            options: BTreeSet::new(),
            logs: Vec::new(),
            log_global: false,
            log_format: None,
            acls: BTreeSet::new(),
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
        p
    }
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
            if found.len() > 1 {
                let (d1, d2) = (&self.config.defaults[found[0]], &self.config.defaults[found[1]]);
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
        let section_word = kind.cap_str();
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
            return out.alert_at(stmt, 0, format!("'{kw}' not allowed in 'defaults' section."));
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
            "balance" if arg.is_empty() => {}
            "balance" => {
                let ok = matches!(grammar().balance(&arg, self.version()), Lookup::Known(_));
                if !ok {
                    let text = "balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', 'url_param', 'hdr(name)' and 'rdp-cookie(name)' options.";
                    return out.alert_at(stmt, 1, text);
                }
                if let Some(p) = self.proxy_mut(r) {
                    p.balance = Some(stmt.args().iter().map(|w| w.text.clone()).collect());
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
            "disabled" | "enabled" => {
                if let Some(p) = self.proxy_mut(r) {
                    p.disabled = kw == "disabled";
                }
            }
            "log" => {
                if arg == "global" {
                    if let Some(p) = self.proxy_mut(r) {
                        p.log_global = !negated;
                    }
                } else if negated {
                    if let Some(p) = self.proxy_mut(r) {
                        p.logs.clear();
                        p.log_global = false;
                    }
                } else {
                    if let Err(e) = address::parse_addr(&arg, AddrContext::Log) {
                        return out.alert_at(stmt, 1, address::log_error_message(&e));
                    }
                    if let Some(p) = self.proxy_mut(r) {
                        p.logs.push(stmt.args().iter().map(|w| w.text.clone()).collect());
                    }
                }
            }
            "log-format" => {
                if let Some(p) = self.proxy_mut(r) {
                    p.log_format = Some(arg);
                }
                out.unsupported(stmt, kw);
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
            _ => &mut t.tarpit,
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
                if negated && !info.negatable {
                    return out.alert_at(stmt, 1, format!("negation/default is not supported for option '{name}'."));
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
        if !matches!(
            name.as_str(),
            "tcplog"
                | "dontlognull"
                | "redispatch"
                | "allbackups"
                | "log-separate-errors"
                | "tcp-check"
                | "tcpka"
                | "clitcpka"
                | "srvtcpka"
        ) {
            out.unsupported(stmt, &format!("option {name}"));
        }
    }

    fn parse_bind(&mut self, r: ProxyRef, stmt: &Stmt, out: &mut Out) {
        let addr_word = stmt.word(1);
        let Some(proxy) = self.proxy_mut(r) else {
            return;
        };
        let context = format!("'bind {addr_word}' in section '{}'", proxy.kind.cap_str());
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
        let options: Vec<String> = stmt.words.iter().skip(2).map(|w| w.text.clone()).collect();
        let mut i = 2;
        let mut unsupported = false;
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
            if !matches!(opt, "name" | "backlog" | "maxconn" | "v4v6" | "v6only" | "interface") {
                unsupported = true;
            }
            i += 1 + nargs;
        }
        if unsupported {
            out.unsupported(stmt, "bind options");
        }
        let span = stmt.span_of(1);
        if let Some(p) = self.proxy_mut(r) {
            p.binds.push(Bind { span, addrs, options });
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
            return out.alert_at(stmt, 0, format!("'{kw}' not allowed in 'defaults' section."));
        }
        let name = stmt.word(1).to_string();
        let ctx = format!("'{kw} {pname}/{name}' : ");
        let located = |text: String| Diagnostic::alert("server", &stmt.span(), text).with_frame(Frame::Located);
        let mut i = 1;
        let mut addr = None;
        if !is_default {
            if stmt.word(2).is_empty() {
                // Said before the server exists, so without its name.
                return out.alert(located(format!("'{kw}' expects <name> and <addr>[:<port>] as arguments.")));
            }
            if let Some(c) = invalid_char(&name) {
                return out.alert(located(format!("{ctx}character '{c}' is not permitted in {kw} name '{name}'.")));
            }
            let word = stmt.word(2);
            match address::parse_addr(word, AddrContext::Server) {
                Ok(mut a) if !a.is_empty() => addr = Some(a.remove(0)),
                Ok(_) => {}
                Err(e) => return out.alert(located(format!("{ctx}{}", e.message()))),
            }
            i = 3;
        }
        let mut track = None;
        let mut unsupported = Vec::new();
        while i < stmt.words.len() {
            let opt = stmt.word(i);
            let Lookup::Known(info) = grammar().server_option(opt, self.version()) else {
                let text = match grammar().suggest_server_option(opt, self.version()) {
                    Some(best) => {
                        format!("{ctx}unknown keyword '{opt}'; did you mean '{best}' maybe ?")
                    }
                    None => format!("{ctx}unknown keyword '{opt}'."),
                };
                return out.alert(located(text));
            };
            if is_default && !info.default_server {
                return out.alert(located(format!("{ctx}'{opt}' option is not accepted in default-server sections")));
            }
            let nargs = info.args.max_args().unwrap_or(1);
            if nargs > 0 && i + nargs >= stmt.words.len() {
                return out.alert(located(format!("{ctx}'{opt}' expects an argument.")));
            }
            match opt {
                "track" => track = Some(stmt.word(i + 1).to_string()),
                "check" | "inter" | "fastinter" | "downinter" | "rise" | "fall" | "port" | "addr" | "weight"
                | "maxconn" | "maxqueue" | "minconn" | "backup" | "disabled" | "enabled" | "slowstart" | "id"
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
        } else {
            p.servers.push(Server { span: stmt.span(), name, addr, options, track, resolved: Vec::new() });
        }
    }
}
