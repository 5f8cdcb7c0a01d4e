//! Arbitrary bytes → `lexer::lines` → `split_line_tracked` on every line, with one output
//! buffer for the whole "file" as the parser keeps it, plus the untracked `split_line`.
#![no_main]

use hapx::config::lexer::{lines, split_line, split_line_tracked, LexCtx, OutBuf, Vars};
use libfuzzer_sys::fuzz_target;

fn vars() -> Vars {
    let mut v = Vars::empty();
    v.set("HOST", "127.0.0.1");
    v.set("PORT", "8080");
    // Splits into several words under `${LIST[*]}`.
    v.set("LIST", "a b  c\td");
    v.set("EMPTY", "");
    v.set("QUOTED", "\"x y\" 'z'");
    v
}

fuzz_target!(|data: &[u8]| {
    let vars = vars();
    let (raw, err) = lines(data);
    if let Some(e) = err {
        let _ = e.message();
    }
    let mut buf = OutBuf::new();
    for line in &raw {
        let ctx = LexCtx {
            vars: &vars,
            file: "fuzz.cfg",
            line: line.number,
            section: "frontend",
        };
        let lexed = split_line_tracked(line.text, &ctx, &mut buf);
        for e in &lexed.errors {
            let _ = (e.message(), e.is_fatal(), e.aborts(), e.frame());
        }
        let again = split_line(line.text, &ctx);
        let _ = again.words.len();
    }
});
