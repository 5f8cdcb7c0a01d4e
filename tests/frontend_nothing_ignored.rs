//! Nothing the grammar accepts is silently ignored.
//!
//! For every keyword of the registry that exists in 3.4 and is legal in global, defaults,
//! frontend, backend or listen, a tiny configuration uses it once, with arguments built
//! from its argument shape, and is loaded at version 3.4. hapx must then do one of three
//! things with that line: refuse it (an alert on the line: bad made-up arguments are fine),
//! say it cannot run it yet (a `hapx::check::UNSUPPORTED` diagnostic on the line), or be one
//! of the keywords the model types into `Config` (the list below, read from src/model/).
//! Anything else would be a line that `hapx -c` accepts and the runtime then ignores.
use hapx::check::{Severity, UNSUPPORTED};
use hapx::config::lexer::Vars;
use hapx::grammar::{grammar, ArgType, KeywordInfo, SectionKind, ShapeItem};
use hapx::model::{load_text, LoadOptions};
use hapx::version::Version;

/// Global keywords that src/model/global.rs stores in `Global` (or applies to the
/// environment) without an UNSUPPORTED note.
const TYPED_GLOBAL: &[&str] = &[
    "daemon",
    "master-worker",
    "quiet",
    "zero-warning",
    "expose-experimental-directives",
    "maxconn",
    "nbthread",
    "pidfile",
    "chroot",
    "ulimit-n",
    "crt-base",
    "ca-base",
    "log",
    "tune.bufsize",
    "user",
    "group",
    "uid",
    "gid",
    "setenv",
    "presetenv",
    "unsetenv",
    "resetenv",
    "hard-stop-after",
    "maxpipes",
    "nosplice",
];

/// Proxy keywords that src/model/proxy.rs stores in `Proxy` without an UNSUPPORTED note
/// (with the plain arguments this test gives them).
const TYPED_PROXY: &[&str] = &[
    "bind",
    "server",
    "default-server",
    "mode",
    "timeout client",
    "timeout server",
    "timeout connect",
    "timeout check",
    "timeout queue",
    "timeout http-keep-alive",
    "timeout http-request",
    "timeout tunnel",
    "timeout tarpit",
    "timeout client-fin",
    "timeout server-fin",
    "option tcplog",
    "option dontlognull",
    "option redispatch",
    "option allbackups",
    "option log-separate-errors",
    "option tcp-check",
    "option log-health-checks",
    "tcp-check connect",
    "tcp-check send",
    "tcp-check send-binary",
    "tcp-check send-lf",
    "tcp-check expect",
    "tcp-check comment",
    "hash-type",
    "hash-balance-factor",
    "option tcpka",
    "option clitcpka",
    "option srvtcpka",
    "option splice-auto",
    "option splice-request",
    "option splice-response",
    "retry-on",
    "balance",
    "default_backend",
    "use_backend",
    "maxconn",
    "fullconn",
    "retries",
    "disabled",
    "enabled",
    "log",
];

const TARGET: Version = Version::new(3, 4);

const SECTIONS: [SectionKind; 5] =
    [SectionKind::Global, SectionKind::Defaults, SectionKind::Frontend, SectionKind::Backend, SectionKind::Listen];

/// A plausible word for an argument type.
fn sample_word(ty: ArgType) -> Vec<&'static str> {
    match ty {
        ArgType::Int => vec!["1"],
        ArgType::Time => vec!["1s"],
        ArgType::Size => vec!["1k"],
        ArgType::Name => vec!["n1"],
        ArgType::Str => vec!["x"],
        ArgType::Addr => vec!["127.0.0.1:18099"],
        ArgType::File => vec!["/dev/null"],
        ArgType::Fmt => vec!["%ci"],
        ArgType::Expr => vec!["src"],
        ArgType::Cond => vec!["if", "TRUE"],
    }
}

/// The fewest words that fill a shape: optional groups left out, the first alternative.
fn fill(items: &[ShapeItem], out: &mut Vec<&'static str>) {
    for item in items {
        match item {
            ShapeItem::Typed(ty) => out.extend(sample_word(*ty)),
            ShapeItem::Literal(w) => out.push(w),
            ShapeItem::Optional(_) | ShapeItem::Rest => {}
            ShapeItem::OneOf(alts) => {
                if let Some(first) = alts.first() {
                    fill(first, out);
                }
            }
        }
    }
}

fn exists_in(k: &KeywordInfo, v: Version) -> bool {
    k.since <= v && k.removed.is_none_or(|r| v < r)
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Alert,
    Unsupported,
    Silent,
}

/// Loads a config using `line` in `section`; returns what hapx said about that line.
fn try_line(section: SectionKind, line: &str) -> (Outcome, String) {
    let mut text = String::from("global\n    expose-experimental-directives\n");
    match section {
        SectionKind::Global => {}
        SectionKind::Defaults => text.push_str("defaults d\n"),
        other => text.push_str(&format!("{} p\n", other.name())),
    }
    let line_no = text.lines().count() as u32 + 1;
    text.push_str(&format!("    {line}\n"));
    let opts = LoadOptions { version: TARGET, base_dir: None };
    let loaded = load_text("t.cfg", text.as_bytes(), &mut Vars::empty(), &opts);
    let on_line = |d: &&hapx::check::Diagnostic| d.span.as_ref().is_some_and(|s| s.line == line_no);
    let here: Vec<_> = loaded.diagnostics.iter().filter(on_line).collect();
    let summary = loaded
        .diagnostics
        .iter()
        .map(|d| format!("{:?} {}: {}", d.severity, d.code, d.message))
        .collect::<Vec<_>>()
        .join(" | ");
    if here.iter().any(|d| d.severity == Severity::Alert) {
        (Outcome::Alert, summary)
    } else if here.iter().any(|d| d.code == UNSUPPORTED) {
        (Outcome::Unsupported, summary)
    } else {
        (Outcome::Silent, summary)
    }
}

fn typed(section: SectionKind, name: &str) -> bool {
    match section {
        SectionKind::Global => TYPED_GLOBAL.contains(&name),
        _ => TYPED_PROXY.contains(&name),
    }
}

struct Case {
    section: SectionKind,
    name: &'static str,
    line: String,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for k in grammar().all_keywords() {
        if k.family || !exists_in(k, TARGET) {
            continue;
        }
        for &section in SECTIONS.iter().filter(|s| k.sections.contains(s)) {
            let mut words: Vec<&str> = k.name.split(' ').collect();
            fill(&k.args.items, &mut words);
            let line = words.join(" ");
            // The `no` form is a different statement: it must not be taken for the plain one.
            if k.negatable {
                cases.push(Case { section, name: k.name, line: format!("no {line}") });
            }
            cases.push(Case { section, name: k.name, line });
        }
    }
    cases
}

#[test]
fn config_lines_are_numbered_as_expected() {
    // The line under test is line 3 in global and line 4 in a proxy: check the helper.
    let (o, s) = try_line(SectionKind::Global, "maxconns 1");
    assert_eq!(o, Outcome::Alert, "{s}");
    let (o, s) = try_line(SectionKind::Listen, "maxconns 1");
    assert_eq!(o, Outcome::Alert, "{s}");
    let (o, s) = try_line(SectionKind::Backend, "cookie SRV insert");
    assert_eq!(o, Outcome::Unsupported, "{s}");
}

#[test]
fn every_keyword_is_typed_refused_or_reported_unsupported() {
    let all = cases();
    assert!(all.len() > 300, "only {} keyword cases", all.len());
    let mut silent = Vec::new();
    let (mut alerts, mut unsupported, mut typed_ok) = (0, 0, 0);
    for c in &all {
        let (outcome, summary) = try_line(c.section, &c.line);
        match outcome {
            Outcome::Alert => alerts += 1,
            Outcome::Unsupported => unsupported += 1,
            Outcome::Silent if typed(c.section, c.name) => typed_ok += 1,
            Outcome::Silent => silent.push(format!("{:<9} {:<40} [{summary}]", c.section.name(), c.line)),
        }
    }
    eprintln!(
        "{} cases: {alerts} refused, {unsupported} reported unsupported, {typed_ok} typed, {} silent",
        all.len(),
        silent.len()
    );
    assert!(silent.is_empty(), "accepted silently, without typing:\n{}", silent.join("\n"));
}

/// Keywords of the typed lists must exist, or the lists hide nothing real.
#[test]
fn typed_lists_name_real_keywords() {
    for (section, list) in [(SectionKind::Global, TYPED_GLOBAL), (SectionKind::Listen, TYPED_PROXY)] {
        for name in list {
            let found = grammar()
                .all_keywords()
                .any(|k| k.name == *name && k.sections.contains(&section) && exists_in(k, TARGET));
            assert!(found, "{name} is not a {} keyword in {TARGET}", section.name());
        }
    }
}

#[test]
#[ignore = "listing only: which made-up lines hapx refuses"]
fn list_refused_lines() {
    for c in cases() {
        let (outcome, summary) = try_line(c.section, &c.line);
        if outcome == Outcome::Alert {
            eprintln!("{:<9} {:<40} [{summary}]", c.section.name(), c.line);
        }
    }
}

/// `no log` in global drops the log targets declared so far (HAProxy 2.6 frees its list);
/// it must not add a log target of its own.
#[test]
fn no_log_in_global_is_not_a_log_target() {
    let text = "global\n    log 127.0.0.1:514 local0\n    no log\n";
    let opts = LoadOptions { version: TARGET, base_dir: None };
    let loaded = load_text("t.cfg", text.as_bytes(), &mut Vars::empty(), &opts);
    assert!(!loaded.has_alert(), "{:?}", loaded.diagnostics);
    let logs = &loaded.config.global.logs;
    let unsupported =
        loaded.diagnostics.iter().any(|d| d.code == UNSUPPORTED && d.span.as_ref().is_some_and(|s| s.line == 3));
    assert!(unsupported || logs.is_empty(), "after 'no log', global logs are {logs:?}");
}

/// Keywords where HAProxy 2.6.12 accepts one word more than their grammar shape says
/// (checked with `haproxy -c`): `setenv n1 1 x`, `presetenv n1 1 x`,
/// `expose-experimental-directives x`, `option redispatch x x`.
const HAPROXY_TAKES_MORE: &[&str] = &[
    "setenv",
    "presetenv",
    "expose-experimental-directives",
    "option redispatch",
    "hard-stop-after",
    "hash-balance-factor",
    "tcp-check comment",
];

/// A typed keyword given one word more than its shape allows must be refused: the model
/// reads only the words it knows, so an unchecked extra word would be silently dropped.
#[test]
fn typed_keywords_refuse_an_extra_argument() {
    let mut accepted = Vec::new();
    for c in cases() {
        if !typed(c.section, c.name) || c.line.starts_with("no ") || HAPROXY_TAKES_MORE.contains(&c.name) {
            continue;
        }
        let Some(k) = grammar()
            .all_keywords()
            .find(|k| k.name == c.name && k.sections.contains(&c.section) && exists_in(k, TARGET))
        else {
            continue;
        };
        let Some(max) = k.args.max_args() else {
            continue;
        };
        let mut words: Vec<&str> = k.name.split(' ').collect();
        fill(&k.args.items, &mut words);
        let given = words.len() - k.name.split(' ').count();
        let extra = vec!["x"; max + 1 - given];
        let line = format!("{} {}", words.join(" "), extra.join(" "));
        let (outcome, summary) = try_line(c.section, &line);
        if outcome != Outcome::Alert {
            accepted.push(format!("{:<9} {line:<40} [{summary}]", c.section.name()));
        }
    }
    assert!(accepted.is_empty(), "extra arguments accepted:\n{}", accepted.join("\n"));
}
