//! Arbitrary bytes → words (split on spaces) → `cond::eval` for every target version, and
//! a `CondStack` driven by the lines that start with a dot-directive.
#![no_main]

use hapx::config::cond::{eval, CondCtx, CondStack, Stop};
use hapx::config::lexer::Vars;
use hapx::version::Version;
use libfuzzer_sys::fuzz_target;

const VERSIONS: &[(u16, u16)] = &[
    (2, 6),
    (2, 7),
    (2, 8),
    (2, 9),
    (3, 0),
    (3, 1),
    (3, 2),
    (3, 3),
    (3, 4),
];

fn vars() -> Vars {
    let mut v = Vars::empty();
    v.set("SCHEME", "https");
    v.set("APP_PORT", "8443");
    v.set("EMPTY", "");
    v.set("LIST", "a b c");
    v
}

fn words(line: &str) -> Vec<String> {
    line.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let vars = vars();

    // The whole input as one condition.
    let all = words(&text.replace('\n', " "));
    for &(major, minor) in VERSIONS {
        let ctx = CondCtx {
            version: Version::new(major, minor),
            vars: &vars,
        };
        if let Err(e) = eval(&all, &ctx) {
            let _ = (e.message(), e.position(), e.render(".if"));
            let _ = e.crashes_haproxy(ctx.version);
        }
    }

    // Line by line through the nesting state, as the parser feeds it.
    for &(major, minor) in &[(2u16, 6u16), (3, 4)] {
        let ctx = CondCtx {
            version: Version::new(major, minor),
            vars: &vars,
        };
        let mut stack = CondStack::new();
        let mut last = 0u32;
        for (i, line) in text.split('\n').enumerate() {
            last = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let ws = words(line);
            let Some((first, rest)) = ws.split_first() else {
                continue;
            };
            if !first.starts_with('.') {
                let _ = stack.active();
                continue;
            }
            match stack.handle(last, first, rest, &ctx) {
                Ok(_) => {}
                Err(e) if e.stop == Stop::Line => {}
                Err(_) => break,
            }
            let _ = stack.open_if_line();
        }
        let _ = stack.finish(last);
    }
});
