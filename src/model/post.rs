//! Checks that need the whole configuration, run after reading as HAProxy runs them
//! (cross references, duplicate names, per-proxy warnings), then server address
//! resolution. Each stage runs only when the previous one found no fatal error.
use std::collections::BTreeMap;

use crate::check::{Diagnostic, Frame, Severity};

use super::address::{self, Host};
use super::proxy::{Mode, Proxy};
use super::{Config, LoadOptions};

/// How the checks after reading ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PostVerdict {
    #[default]
    Ok,
    /// A cross-reference or validity check failed ("Fatal errors found in configuration.").
    Fatal,
    /// A server address could not be set up ("Failed to initialize server(s) addr.").
    AddrFailed,
}

pub fn check(config: &mut Config, _opts: &LoadOptions, diags: &mut Vec<Diagnostic>) -> PostVerdict {
    let before = diags.len();
    if let Some(span) = &config.global.has_program {
        if !config.global.master_worker {
            let d = Diagnostic::new(
                Severity::Alert,
                "program",
                Some(span.clone()),
                Frame::Bare,
                "Can't use a 'program' section without master worker mode.",
            );
            diags.push(d);
        }
    }
    cross_references(config, diags);
    unsupported_modes(config, diags);
    if diags.iter().skip(before).any(|d| d.severity == Severity::Alert) {
        return PostVerdict::Fatal;
    }
    if resolve_servers(config, diags) {
        return PostVerdict::AddrFailed;
    }
    PostVerdict::Ok
}

fn bare(severity: Severity, code: &'static str, text: String) -> Diagnostic {
    Diagnostic::new(severity, code, None, Frame::Bare, text)
}

fn cross_references(config: &Config, diags: &mut Vec<Diagnostic>) {
    // HAProxy finds a backend by name among proxies with the backend capability (the first
    // one declared, should names repeat).
    let mut backends: BTreeMap<&str, &Proxy> = BTreeMap::new();
    for p in config.proxies.iter().filter(|p| p.kind.is_backend()) {
        backends.entry(p.name.as_str()).or_insert(p);
    }
    for p in &config.proxies {
        if p.disabled {
            continue;
        }
        if p.kind.is_frontend() {
            let targets = p.default_backend.iter().map(|t| (t, "default_backend", "as its default backend"));
            let rules = p.use_backends.iter().map(|t| (t, "use_backend", "in a 'use_backend' rule"));
            for ((name, span), what, usage) in targets.chain(rules) {
                // A name with a log-format expression is resolved per request.
                if name.contains('%') {
                    continue;
                }
                let text = match backends.get(name.as_str()) {
                    None => format!("Proxy '{}': unable to find required {what}: '{name}'.", p.name),
                    Some(target) if std::ptr::eq(*target, p) => {
                        format!("Proxy '{}': loop detected for {what}: '{name}'.", p.name)
                    }
                    // A tcp frontend may hand over to an http backend, not the reverse.
                    Some(target) if target.mode != p.mode && !(p.mode == Mode::Tcp && target.mode == Mode::Http) => {
                        format!(
                            "{} {} '{}' ({}:{}) tries to use incompatible {} {} '{}' ({}:{}) {usage} (see 'mode').",
                            p.mode.as_str(),
                            p.kind.type_str(),
                            p.name,
                            p.span.file,
                            p.span.line,
                            target.mode.as_str(),
                            target.kind.type_str(),
                            target.name,
                            target.span.file,
                            target.span.line
                        )
                    }
                    Some(_) => continue,
                };
                diags.push(bare(Severity::Alert, "backend-reference", text).with_span(span));
            }
        }
        let t = &p.timeouts;
        let unset = |v: Option<u64>| v.unwrap_or(0) == 0;
        // As HAProxy: a backend only needs its timeouts when it has servers, and a tunnel
        // timeout stands in for the server one in tcp mode.
        let missing_timeouts = (p.kind.is_frontend() && unset(t.client))
            || (p.kind.is_backend()
                && !p.servers.is_empty()
                && (unset(t.connect) || (unset(t.server) && (p.mode == Mode::Http || unset(t.tunnel)))));
        if missing_timeouts && p.mode != Mode::Log {
            let text = format!(
                "missing timeouts for {} '{}'.\n   | While not properly invalid, you will certainly encounter various problems\n   | with such a configuration. To fix this, please ensure that all following\n   | timeouts are set to a non-zero value: 'client', 'connect', 'server'.",
                p.kind.type_str(),
                p.name
            );
            diags.push(bare(Severity::Warning, "missing-timeouts", text).with_span(&p.span));
        }
        let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
        for s in &p.servers {
            if let Some(line) = seen.get(s.name.as_str()) {
                let text = format!(
                    "{} '{}', another server named '{}' was already defined at line {line}, please use distinct names.",
                    p.kind.type_str(),
                    p.name,
                    s.name
                );
                diags.push(Diagnostic::alert("duplicate-server", &s.span, text));
            } else {
                seen.insert(&s.name, s.span.line);
            }
            if let Some(track) = &s.track {
                let (px, _srv) = match track.split_once('/') {
                    Some((a, b)) => (a, b),
                    None => (p.name.as_str(), track.as_str()),
                };
                if !backends.contains_key(px) {
                    let text =
                        format!("'server {}/{}' : unable to find required proxy '{px}' for tracking.", p.name, s.name);
                    diags.push(Diagnostic::alert("track", &s.span, text).with_frame(Frame::Located));
                }
            }
        }
        if (p.options.contains("tcplog") || p.options.contains("httplog") || p.log_format.is_some())
            && p.logs.is_empty()
            && !p.log_global
        {
            let text =
                format!("log format ignored for {} '{}' since it has no log address.", p.kind.type_str(), p.name);
            diags.push(bare(Severity::Warning, "log-format", text).with_span(&p.span));
        }
    }
}

/// Resolves server host names at load time; HAProxy fails the load when one does not
/// resolve, unless `init-addr` allows it.
fn resolve_servers(config: &mut Config, diags: &mut Vec<Diagnostic>) -> bool {
    let mut failed = false;
    for p in &mut config.proxies {
        let pname = p.name.clone();
        let tolerant_default = init_addr_none(&p.default_server);
        for s in &mut p.servers {
            let Some(addr) = &s.addr else { continue };
            let Host::Name(name) = &addr.host else {
                s.resolved = address::resolve(addr).unwrap_or_default();
                continue;
            };
            match address::resolve(addr) {
                Ok(v) => s.resolved = v,
                Err(_) => {
                    let tolerant = tolerant_default || init_addr_none(&s.options);
                    let (sev, text) = if tolerant {
                        (
                            Severity::Warning,
                            format!(
                                "'server {pname}/{}' : could not resolve address '{name}', disabling server.",
                                s.name
                            ),
                        )
                    } else {
                        failed = true;
                        (Severity::Alert, format!("'server {pname}/{}' : could not resolve address '{name}'.", s.name))
                    };
                    diags.push(Diagnostic::new(sev, "resolve", Some(s.span.clone()), Frame::Located, text));
                }
            }
        }
    }
    if failed {
        diags.push(bare(Severity::Alert, "resolve", "Failed to initialize server(s) addr.".to_string()));
    }
    failed
}

/// hapx runs TCP proxies only: any other mode a proxy ends up with cannot run yet.
fn unsupported_modes(config: &Config, diags: &mut Vec<Diagnostic>) {
    for p in config.proxies.iter().filter(|p| !p.disabled && p.mode != Mode::Tcp) {
        let word = if p.mode == Mode::Http { "http" } else { "log" };
        let span = p.mode_span.clone().unwrap_or_else(|| p.span.clone());
        let text = format!("'mode {word}' (in {} '{}') is not supported by hapx yet.", p.kind.type_str(), p.name);
        diags.push(Diagnostic::new(Severity::Warning, crate::check::UNSUPPORTED, Some(span), Frame::Parsing, text));
    }
}

/// `init-addr ... none` among server options: an unresolvable name then only disables the server.
fn init_addr_none(options: &[String]) -> bool {
    options.windows(2).any(|w| matches!(w, [k, v] if k == "init-addr" && v.split(',').any(|m| m == "none")))
}
