//! Arbitrary bytes as a whole configuration → `model::load_text` (lexer, `.if`, parser,
//! model, post checks) for the oldest and newest target versions.
//!
//! Host names in the config go through getaddrinfo: run this target with a resolver that
//! fails at once (see fuzz/README.md), or DNS timeouts make it look hung.
#![no_main]

use std::path::PathBuf;

use hapx::config::lexer::Vars;
use hapx::model::{load_text, LoadOptions};
use hapx::version::Version;
use libfuzzer_sys::fuzz_target;

fn vars() -> Vars {
    let mut v = Vars::empty();
    v.set("HOST", "127.0.0.1");
    v.set("PORT", "8080");
    v.set("LIST", "a b c");
    v.set("SCHEME", "https");
    v
}

fuzz_target!(|data: &[u8]| {
    // A folder that does not exist: relative paths in the config never reach real files.
    let base = std::env::temp_dir().join("hapx-fuzz-nonexistent/base");
    for version in [Version::new(2, 6), Version::new(3, 4)] {
        let opts = LoadOptions {
            version,
            base_dir: Some(PathBuf::from(&base)),
        };
        let mut vars = vars();
        let loaded = load_text("fuzz.cfg", data, &mut vars, &opts);
        let _ = loaded.has_alert();
    }
});
