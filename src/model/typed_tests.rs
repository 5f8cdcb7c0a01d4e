//! The typed boundary: each value the runtime consumes is typed where its line is read, and
//! a value the model cannot type is an alert (or an "unsupported" note) at that line.
use crate::check::{Severity, UNSUPPORTED};
use crate::config::lexer::Vars;
use crate::version::Version;

use super::balance::{Algorithm, HashFetch, HashFunc, HashKey, HashMethod};
use super::{load_text, LoadOptions, Loaded};

fn load(body: &str) -> Loaded {
    let text = format!("listen p\n    bind 127.0.0.1:18080\n{body}    server s1 127.0.0.1:1883\n");
    let opts = LoadOptions { version: Version::new(2, 6), base_dir: None };
    load_text("t.cfg", text.as_bytes(), &mut Vars::empty(), &opts)
}

/// The `file:line` and text of every alert, and of every unsupported note.
fn said(l: &Loaded) -> (Vec<String>, Vec<String>) {
    let at = |d: &crate::check::Diagnostic| {
        let (file, line) = d.span.as_ref().map_or(("?".into(), 0), |s| (s.file.to_string(), s.line));
        format!("[{file}:{line}] {}", d.message)
    };
    let alerts = l.diagnostics.iter().filter(|d| d.severity == Severity::Alert).map(at).collect();
    let unsupported = l.diagnostics.iter().filter(|d| d.code == UNSUPPORTED).map(at).collect();
    (alerts, unsupported)
}

#[test]
fn balance_and_hash_type_are_typed_at_their_lines() {
    let l = load("    balance hash dst\n    hash-type consistent djb2\n    hash-balance-factor 150\n");
    assert_eq!(said(&l), (vec![], vec![]));
    let b = l.config.proxies.first().map(|p| p.balance.clone()).unwrap_or_default();
    assert_eq!(b.algorithm, Algorithm::Hash(HashKey::Fetch(HashFetch::Dst)));
    assert_eq!(
        (b.hash_type.method, b.hash_type.func, b.hash_type.avalanche),
        (HashMethod::Consistent, HashFunc::Djb2, false)
    );
    assert_eq!(b.hash_balance_factor, Some(150));
}

#[test]
fn bad_balance_and_hash_type_are_alerts_at_their_lines() {
    let (alerts, _) = said(&load("    balance random(0)\n    hash-type consistent md5\n"));
    assert_eq!(
        alerts,
        vec![
            "[t.cfg:3] balance random : number of draws must be at least 1.".to_string(),
            "[t.cfg:4] 'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions.".to_string(),
        ]
    );
}

#[test]
fn http_balance_is_unsupported_at_its_line() {
    let (alerts, unsupported) = said(&load("    balance uri\n"));
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(unsupported, vec!["[t.cfg:3] 'balance uri' is not supported by hapx yet.".to_string()]);
}

#[test]
fn tcp_check_rules_are_typed_and_refused_at_their_lines() {
    let l = load("    option tcp-check\n    tcp-check send PING\n    tcp-check connect port 80\n");
    let (alerts, _) = said(&l);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts.iter().all(|a| a.starts_with("[t.cfg:5] 'tcp-check connect' : first step MUST")), "{alerts:?}");
    let l = load("    tcp-check connect ssl\n");
    assert_eq!(said(&l).1, vec!["[t.cfg:3] 'tcp-check connect ssl' is not supported by hapx yet.".to_string()]);
    let l = load("    tcp-check send-binary 1010\n");
    assert_eq!(l.config.proxies.first().map(|p| p.tcp_check.len()), Some(1));
}

#[test]
fn log_targets_are_typed_and_unrunnable_ones_unsupported_at_their_lines() {
    let l = load("    log 127.0.0.1:514 local0 info\n    log ring@buf local0\n");
    let (alerts, unsupported) = said(&l);
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(unsupported.len(), 1, "{unsupported:?}");
    assert!(unsupported.iter().all(|u| u.starts_with("[t.cfg:4] 'log ring@buf (")), "{unsupported:?}");
    let logs = l.config.proxies.first().map(|p| p.logs.clone()).unwrap_or_default();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs.first().map(|t| t.level), Some(crate::logging::Severity::Info));
}

#[test]
fn log_format_is_compiled_at_its_line() {
    let l = load("    log-format \"%ci %[src]\"\n");
    let (_, unsupported) = said(&l);
    assert!(unsupported.iter().any(|u| u.starts_with("[t.cfg:3] 'log-format (sample expressions")), "{unsupported:?}");
    let l = load("    log-format \"%ci:%cp\"\n");
    let f = l.config.proxies.first().and_then(|p| p.log_format.clone());
    assert!(f.is_some_and(|f| f.compiled.is_ok()));
}

#[test]
fn bind_numbers_and_server_check_options_are_typed_at_their_lines() {
    let l = load("    bind 127.0.0.1:18081 maxconn 10x backlog 0 v6only\n");
    let b = l.config.proxies.first().and_then(|p| p.binds.get(1)).map(|b| b.opts.clone()).unwrap_or_default();
    assert_eq!((b.maxconn, b.backlog, b.v6only), (10, 0, Some(true)));
    let (alerts, _) = said(&load("    bind 127.0.0.1:18081 maxconn -1\n"));
    assert_eq!(
        alerts,
        vec!["[t.cfg:3] 'bind 127.0.0.1:18081' in section 'listen' : 'maxconn' : invalid value -1, must be >= 0"
            .to_string()]
    );
    let (alerts, _) = said(&load("    default-server on-error foo\n"));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts.iter().all(|a| a.starts_with("[t.cfg:3] ") && a.contains("'on-error' expects one of")),
        "{alerts:?}"
    );
}

#[test]
fn retry_on_and_redispatch_interval_are_typed() {
    let l = load("    retry-on none\n    option redispatch 2\n    option splice-auto\n");
    assert_eq!(said(&l), (vec![], vec![]));
    let p = l
        .config
        .proxies
        .first()
        .map(|p| (p.retry_on_conn_failure, p.redispatch_interval, p.options.contains("redispatch")));
    assert_eq!(p, Some((false, 2, true)));
    let l = load("    retry-on empty-response conn-failure\n    option redispatch\n");
    let p = l.config.proxies.first().map(|p| (p.retry_on_conn_failure, p.redispatch_interval));
    assert_eq!(p, Some((true, -1)));
    let l = load("    option redispatch 0\n");
    assert_eq!(l.config.proxies.first().map(|p| p.options.contains("redispatch")), Some(false), "0 turns it off");
    let l = load("    retry-on conn-failure bogus\n");
    assert_eq!(said(&l).0, vec!["[t.cfg:3] 'retry-on': unknown keyword 'bogus'".to_string()]);
}
