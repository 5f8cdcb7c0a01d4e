//! The command line around the config front end: the output formats (`--format json`,
//! `github`, `human`), `-cc EXPR`, loading several files (`-f DIR`, repeated `-f`, `--`),
//! `--target-version`, and a missing file. Where HAProxy 2.6 has the same behaviour, hapx's
//! answer is compared with what the installed `haproxy` says on the same files (those
//! comparisons fail when `haproxy` is not installed: CI installs it).
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::normalize_line;

/// hapx's own warnings about lines it cannot run yet; HAProxy has no such lines.
const HAPX_ONLY: &str = "is not supported by hapx yet.";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs a program from `dir` in the same minimal environment as oracle.sh.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> Option<Run> {
    let out = Command::new("env")
        .args(["-i", "PATH=/usr/sbin:/usr/bin:/bin", "HOME=/tmp", program])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    // env exits 127 when the program is not installed.
    if out.status.code() == Some(127) && program == "haproxy" {
        return None;
    }
    Some(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn hapx(dir: &Path, args: &[&str]) -> Run {
    run_in(dir, env!("CARGO_BIN_EXE_hapx"), args).expect("run hapx")
}

fn haproxy(dir: &Path, args: &[&str]) -> Option<Run> {
    let r = run_in(dir, "haproxy", args);
    assert!(r.is_some(), "haproxy is required by this test (.ci/run installs it)");
    r
}

/// oracle.sh's normalization of `[ALERT]`/`[WARNING]` lines (pid removed, blanks collapsed),
/// without hapx's own "not supported" warnings.
fn normalize(stderr: &str) -> Vec<String> {
    stderr.lines().filter_map(normalize_line).filter(|l| !l.contains(HAPX_ONLY)).collect()
}

fn testdata(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(folder)
}

/// A fresh folder under the test target's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("frontend-formats-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).expect("write config");
}

/// Every `.cfg` of testdata/valid and testdata/invalid, as (folder, file name).
fn all_testdata() -> Vec<(PathBuf, String)> {
    let mut all = Vec::new();
    for folder in ["valid", "invalid"] {
        let dir = testdata(folder);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("testdata folder")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cfg"))
            .collect();
        names.sort();
        all.extend(names.into_iter().map(|n| (dir.clone(), n)));
    }
    all
}

// ---------------------------------------------------------------------------------------
// A tiny JSON reader: enough to prove each line is exactly one well-formed JSON value.

#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Json::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn num(&self, key: &str) -> Option<f64> {
        match self.get(key) {
            Some(Json::Num(n)) => Some(*n),
            _ => None,
        }
    }
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl JsonParser<'_> {
    /// Parses a whole text that must hold one value and nothing else but blanks.
    fn parse_all(text: &str) -> Result<Json, String> {
        let mut p = JsonParser { bytes: text.as_bytes(), pos: 0 };
        let v = p.value()?;
        p.blanks();
        if p.pos != p.bytes.len() {
            return Err(format!("trailing text at byte {}", p.pos));
        }
        Ok(v)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", b as char, self.pos))
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(format!("bad literal at byte {}", self.pos))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.blanks();
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                self.blanks();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.blanks();
                    let key = self.string()?;
                    if fields.iter().any(|(k, _)| *k == key) {
                        return Err(format!("duplicate key '{key}'"));
                    }
                    self.blanks();
                    self.eat(b':')?;
                    let v = self.value()?;
                    fields.push((key, v));
                    self.blanks();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.pos)),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.blanks();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.blanks();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("expected ',' or ']' at byte {}", self.pos)),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(format!("unexpected byte at {}", self.pos)),
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).map_err(|e| e.to_string())?;
        text.parse().map(Json::Num).map_err(|_| format!("bad number '{text}'"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let b = self.peek().ok_or("unterminated string")?;
            self.pos += 1;
            match b {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = self.peek().ok_or("unterminated escape")?;
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self.bytes.get(self.pos..self.pos + 4).ok_or("short \\u")?;
                            let hex = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
                            let code = u32::from_str_radix(hex, 16).map_err(|_| "bad \\u")?;
                            self.pos += 4;
                            let c = char::from_u32(code).unwrap_or('\u{fffd}');
                            out.extend_from_slice(c.to_string().as_bytes());
                        }
                        _ => return Err(format!("bad escape at byte {}", self.pos)),
                    }
                }
                0..=0x1f => return Err(format!("raw control byte in string at {}", self.pos)),
                _ => out.push(b),
            }
        }
    }
}

#[test]
fn json_reader_accepts_and_refuses() {
    assert!(JsonParser::parse_all(r#"{"a":[1,-2.5e3,true,null],"b":"x\n\u00e9"}"#).is_ok());
    assert!(JsonParser::parse_all(r#"{"a":1}{"b":2}"#).is_err());
    assert!(JsonParser::parse_all("{\"a\":\"raw\ttab\"}").is_err());
    assert!(JsonParser::parse_all(r#"{"a":1,"a":2}"#).is_err());
}

// ---------------------------------------------------------------------------------------
// --format json

/// HAProxy's closing lines, which hapx prints as the verdict object rather than diagnostics.
fn is_closing_line(text: &str) -> bool {
    text.starts_with("Error(s) found in configuration file")
        || text.starts_with("Fatal errors found in configuration")
        || text.starts_with("Some warnings were found")
}

#[test]
fn json_format_is_one_object_per_line_on_every_testdata_config() {
    let mut problems = Vec::new();
    for (dir, name) in all_testdata() {
        let r = hapx(&dir, &["-c", "--target-version", "2.6", "--format", "json", "-f", &name]);
        if !r.stderr.is_empty() {
            problems.push(format!("{name}: json mode wrote to stderr: {}", r.stderr.trim_end()));
        }
        let lines: Vec<&str> = r.stdout.lines().collect();
        let mut objects = Vec::new();
        for line in &lines {
            match JsonParser::parse_all(line) {
                Ok(v @ Json::Obj(_)) => objects.push(v),
                Ok(_) => problems.push(format!("{name}: not an object: {line}")),
                Err(e) => problems.push(format!("{name}: {e}: {line}")),
            }
        }
        let Some((last, diags)) = objects.split_last() else {
            problems.push(format!("{name}: no output"));
            continue;
        };
        if last.num("exit") != Some(f64::from(r.code)) || last.str("verdict").is_none() {
            problems.push(format!("{name}: last line is not the verdict for exit {}: {:?}", r.code, lines.last()));
        }
        for d in diags {
            let ok_sev = matches!(d.str("severity"), Some("alert" | "warning" | "notice" | "diag"));
            if !ok_sev || d.str("code").is_none() || d.str("message").is_none() || d.str("haproxy").is_none() {
                problems.push(format!("{name}: diagnostic lacks severity/code/message/haproxy: {d:?}"));
            }
            if d.get("file").is_some()
                && !(d.num("line").is_some_and(|n| n >= 1.0) && d.num("column").is_some_and(|n| n >= 1.0))
            {
                problems.push(format!("{name}: located diagnostic without line/column >= 1: {d:?}"));
            }
        }
        // Every line of hapx's own HAProxy-format output is one diagnostic's `haproxy`
        // text (HAProxy's closing lines are the verdict object instead).
        let texts: Vec<String> = diags
            .iter()
            .filter_map(|d| d.str("haproxy"))
            .map(|t| {
                let first = t.lines().next().unwrap_or("");
                first.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        let plain = hapx(&dir, &["-c", "--target-version", "2.6", "-f", &name]);
        for line in normalize(&plain.stderr) {
            let Some(text) = line.split_once(" config : ").map(|(_, t)| t) else {
                continue;
            };
            if !is_closing_line(text) && !texts.iter().any(|t| t == text) {
                problems.push(format!("{name}: no json diagnostic with haproxy text: {text}"));
            }
        }
        if plain.code != r.code {
            problems.push(format!("{name}: exit {} in json, {} in haproxy format", r.code, plain.code));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn json_escapes_quotes_newlines_and_non_ascii() {
    // The unterminated quote message spans three lines; the BOM is a non-ASCII keyword.
    for (name, needle) in [("unterminated_double_quote.cfg", "\n"), ("bom_first_line.cfg", "\u{feff}global")] {
        let r = hapx(&testdata("invalid"), &["-c", "--target-version", "2.6", "--format", "json", "-f", name]);
        let first = r.stdout.lines().next().unwrap_or("");
        let v = JsonParser::parse_all(first).unwrap_or_else(|e| panic!("{name}: {e}: {first}"));
        assert!(v.str("message").is_some_and(|m| m.contains(needle)), "{name}: {first}");
    }
}

// ---------------------------------------------------------------------------------------
// --format github

#[test]
fn github_format_annotates_each_diagnostic_with_file_and_line() {
    let dir = testdata("invalid");
    let r =
        hapx(&dir, &["-c", "--target-version", "2.6", "--format", "github", "-f", "unknown_keyword_did_you_mean.cfg"]);
    assert_eq!(r.code, 1);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    assert!(lines[0].starts_with("::error file=unknown_keyword_did_you_mean.cfg,line=2,"), "{}", lines[0]);
    let message = lines[0].split_once("::").and_then(|(_, rest)| rest.split_once("::")).map(|(_, m)| m);
    assert_eq!(message, Some("unknown keyword 'maxconns' in 'global' section; did you mean 'maxconn' maybe ?"));
}

#[test]
fn github_format_lines_are_workflow_commands_on_every_testdata_config() {
    let mut problems = Vec::new();
    for (dir, name) in all_testdata() {
        let r = hapx(&dir, &["-c", "--target-version", "2.6", "--format", "github", "-f", &name]);
        for line in r.stdout.lines() {
            let Some((level, rest)) = line.strip_prefix("::").and_then(|l| l.split_once(' ')) else {
                problems.push(format!("{name}: not a workflow command: {line}"));
                continue;
            };
            if !matches!(level, "error" | "warning" | "notice") {
                problems.push(format!("{name}: level '{level}': {line}"));
            }
            let Some((props, _message)) = rest.split_once("::") else {
                problems.push(format!("{name}: no '::' before the message: {line}"));
                continue;
            };
            for prop in props.split(',') {
                let Some((key, value)) = prop.split_once('=') else {
                    problems.push(format!("{name}: property without '=': {prop}"));
                    continue;
                };
                let numeric = matches!(key, "line" | "col" | "endColumn" | "endLine");
                if numeric && !value.bytes().all(|b| b.is_ascii_digit()) {
                    problems.push(format!("{name}: {key}={value} is not a number"));
                }
                if !matches!(key, "file" | "line" | "col" | "endColumn" | "endLine" | "title") {
                    problems.push(format!("{name}: unknown property {key}"));
                }
            }
            if props.contains("file=") && !props.contains(",line=") {
                problems.push(format!("{name}: file without line: {line}"));
            }
        }
        // One `::error` per HAProxy alert that hapx reports as a diagnostic.
        let errors = r.stdout.lines().filter(|l| l.starts_with("::error ")).count();
        if r.code == 1 && errors == 0 && name != "zero_warning_makes_warning_fatal.cfg" {
            problems.push(format!("{name}: exit 1 without any ::error line"));
        }
        if r.code == 0
            && errors != 0
            && !std::fs::read_to_string(dir.join(name.replace(".cfg", ".expect")))
                .unwrap_or_default()
                .contains("[ALERT]")
        {
            problems.push(format!("{name}: exit 0 with ::error lines and no HAProxy alert"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn github_format_reports_the_zero_warning_failure() {
    let r = hapx(
        &testdata("invalid"),
        &["-c", "--target-version", "2.6", "--format", "github", "-f", "zero_warning_makes_warning_fatal.cfg"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.lines().any(|l| l.starts_with("::error ")), "{}", r.stdout);
}

// ---------------------------------------------------------------------------------------
// --format human

/// The human blocks of one run: (line, column, echoed source line, caret line).
fn human_blocks(stderr: &str) -> Vec<(u32, u32, String, String)> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut blocks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut parts = line.splitn(4, ':');
        let (_file, l, c) = (parts.next(), parts.next(), parts.next());
        let (Some(l), Some(c)) = (l.and_then(|x| x.parse().ok()), c.and_then(|x| x.parse().ok())) else {
            continue;
        };
        let (Some(src), Some(caret)) = (lines.get(i + 1), lines.get(i + 2)) else {
            continue;
        };
        if caret.trim_start().starts_with('^') {
            blocks.push((l, c, src.to_string(), caret.to_string()));
        }
    }
    blocks
}

/// The caret starts under byte `col` of the source line (both lines indented alike) and
/// marks `word`.
fn assert_caret(dir: &Path, cfg: &str, word: &str) {
    let r = hapx(dir, &["-c", "--target-version", "2.6", "--format", "human", "-f", cfg]);
    let blocks = human_blocks(&r.stderr);
    let (_, col, src, caret) = blocks.first().unwrap_or_else(|| panic!("{cfg}: no caret block in:\n{}", r.stderr));
    let start = caret.find('^').expect("caret");
    let len = caret[start..].bytes().take_while(|&b| b == b'^').count();
    assert_eq!(&src[start..start + len], word, "{cfg}:\n{}", r.stderr);
    // The echoed line is the source line behind a fixed indent.
    let indent = src.len() - src.trim_start_matches(' ').len();
    let indent = indent.min(2);
    assert_eq!(start - indent + 1, *col as usize, "{cfg}: caret column:\n{}", r.stderr);
    // Tabs in the source line are kept in the caret line's padding.
    assert_eq!(
        caret[indent..start].bytes().filter(|&b| b == b'\t').count(),
        src[indent..start].bytes().filter(|&b| b == b'\t').count(),
        "{cfg}: tabs"
    );
}

#[test]
fn human_format_puts_the_caret_under_the_offending_word() {
    let dir = scratch("human");
    write(&dir, "kw.cfg", "global\n    maxconns 10\n");
    write(&dir, "tab.cfg", "global\n\t maxconns 10\n");
    write(&dir, "timeout.cfg", "listen l\n    bind 127.0.0.1:18080\n    timeout check   10S\n");
    write(&dir, "bind.cfg", "listen l\n    bind 127.0.0.2 name x\n");
    assert_caret(&dir, "kw.cfg", "maxconns");
    assert_caret(&dir, "tab.cfg", "maxconns");
    assert_caret(&dir, "timeout.cfg", "10S");
    assert_caret(&dir, "bind.cfg", "127.0.0.2");
}

/// HAProxy's lexical errors give a 1-based `position` and put their own caret under that
/// byte: the opening quote, the `$`'s bad first character, the `\` of a bad `\x`.
#[test]
fn human_format_marks_lexical_errors_where_haproxy_does() {
    for (cfg, marked) in [
        ("unterminated_double_quote.cfg", b'"'),
        ("unterminated_single_quote_escape.cfg", b'\''),
        ("env_forbidden_first_char.cfg", b'5'),
        ("hex_escape_truncated.cfg", b'\\'),
    ] {
        let r = hapx(&testdata("invalid"), &["-c", "--target-version", "2.6", "--format", "human", "-f", cfg]);
        let blocks = human_blocks(&r.stderr);
        let (line, _, src, caret) = blocks.first().unwrap_or_else(|| panic!("{cfg}: no caret block:\n{}", r.stderr));
        assert_eq!(*line, 2);
        let start = caret.find('^').expect("caret");
        assert_eq!(src.as_bytes().get(start), Some(&marked), "{cfg}:\n{}", r.stderr);
    }
}

#[test]
fn human_format_echoes_the_real_source_line_on_every_testdata_config() {
    let mut problems = Vec::new();
    for (dir, name) in all_testdata() {
        let r = hapx(&dir, &["-c", "--target-version", "2.6", "--format", "human", "-f", &name]);
        let bytes = std::fs::read(dir.join(&name)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let source: Vec<&str> = text.lines().collect();
        for (line, col, src, caret) in human_blocks(&r.stderr) {
            let Some(real) = source.get(line as usize - 1) else {
                problems.push(format!("{name}: line {line} beyond the file"));
                continue;
            };
            let real = real.trim_end_matches('\r');
            if src.get(2..) != Some(real) && real.len() < 1000 {
                problems.push(format!("{name}:{line}: echoed {src:?}, file has {real:?}"));
            }
            // A column past the end of the line (a missing LF) is drawn right after it.
            let want = 2 + (col as usize - 1).min(real.len());
            if caret.find('^') != Some(want) {
                problems.push(format!("{name}:{line}: column {col} but caret at {:?}", caret.find('^')));
            }
        }
        if r.stderr.lines().last().is_some_and(|l| !l.contains(&format!("(exit {})", r.code))) {
            problems.push(format!("{name}: summary does not give exit {}", r.code));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------
// -cc EXPR

/// Expression, and HAProxy 2.6.12's exit status (0 true, 1 false, 2 unparsable).
const CONDITIONS: &[(&str, i32)] = &[
    ("1", 0),
    ("0", 1),
    ("", 1),
    ("defined(HOME)", 0),
    ("defined(NOPE)", 1),
    ("streq(a,a)", 0),
    ("streq(a, a)", 1),
    ("strneq(a,b)", 0),
    ("version_atleast(2.6)", 0),
    ("version_atleast(3.0)", 1),
    ("version_before(2.7-dev0)", 0),
    ("!1 || (1 && 0)", 1),
    ("1 || 0 && 0", 0),
    ("feature(OPENSSL)", 0),
    ("feature(QUIC)", 1),
    ("strstr(abc,b)", 2),
    ("enabled(POLL)", 2),
    ("(1", 2),
    ("1 &&", 2),
    ("nope", 2),
];

#[test]
fn check_condition_exit_codes_match_haproxy() {
    let dir = std::env::temp_dir();
    let mut problems = Vec::new();
    for &(expr, want) in CONDITIONS {
        let got = hapx(&dir, &["--target-version", "2.6", "-cc", expr]).code;
        let oracle = haproxy(&dir, &["-cc", expr]).map(|r| r.code);
        if let Some(h) = oracle {
            assert_eq!(h, want, "the table disagrees with haproxy on -cc {expr:?}");
        }
        if got != want {
            problems.push(format!("-cc {expr:?}: hapx {got}, haproxy {want}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn check_condition_error_text_matches_haproxy() {
    let dir = std::env::temp_dir();
    for expr in ["(1", "1 &&", "nope"] {
        let got = normalize(&hapx(&dir, &["--target-version", "2.6", "-cc", expr]).stderr);
        let Some(h) = haproxy(&dir, &["-cc", expr]) else {
            return;
        };
        assert_eq!(got, normalize(&h.stderr), "-cc {expr:?}");
    }
}

#[test]
#[ignore = "deliberate difference: hapx reads --target-version X.Y as the newest patch of X.Y (X.Y.inf), so version_before(2.6.13) is false; the oracle is 2.6.12"]
fn check_condition_patch_level_matches_haproxy_2_6_12() {
    let dir = std::env::temp_dir();
    // haproxy 2.6.12: version_before(2.6.13) is true.
    assert_eq!(hapx(&dir, &["--target-version", "2.6", "-cc", "version_before(2.6.13)"]).code, 0);
}

// ---------------------------------------------------------------------------------------
// Loading several files

/// A folder holding files that `-f DIR` must load or skip; each says its name.
fn config_dir() -> PathBuf {
    let dir = scratch("dir");
    let d = dir.join("d");
    for name in
        ["02-a.cfg", "10-b.cfg", "B.cfg", ".hidden.cfg", "a.CFG", "x.cfg~", "notes.txt", "noext", "sub.cfg/in.cfg"]
    {
        write(&d, name, &format!("global\n    .warning \"{name}\"\n"));
    }
    dir
}

fn both(dir: &Path, args: &[&str]) -> (Run, Option<Run>) {
    let mut hargs = vec!["-c", "--target-version", "2.6"];
    hargs.extend_from_slice(args);
    let mut oargs = vec!["-c"];
    oargs.extend_from_slice(args);
    (hapx(dir, &hargs), haproxy(dir, &oargs))
}

/// The file names that the `.warning` lines of a run show, in order.
fn loaded_order(stderr: &str) -> Vec<String> {
    normalize(stderr)
        .iter()
        .filter_map(|l| l.rsplit_once("]: '").map(|(_, n)| n.trim_end_matches("'.").to_string()))
        .collect()
}

#[test]
fn dir_loads_cfg_files_in_byte_order_skipping_hidden_and_others() {
    let dir = config_dir();
    let (x, h) = both(&dir, &["-f", "d"]);
    assert_eq!(loaded_order(&x.stderr), ["02-a.cfg", "10-b.cfg", "B.cfg"], "{}", x.stderr);
    assert_eq!(x.code, 2, "no listener");
    if let Some(h) = h {
        assert_eq!(normalize(&x.stderr), normalize(&h.stderr));
        assert_eq!(x.code, h.code);
    }
}

#[test]
fn repeated_f_and_double_dash_load_in_command_line_order() {
    let dir = config_dir();
    for args in [
        vec!["-f", "d/B.cfg", "-f", "d/02-a.cfg", "-f", "d/10-b.cfg"],
        vec!["-f", "d/B.cfg", "--", "d/10-b.cfg", "d/02-a.cfg"],
        vec!["--", "d/10-b.cfg", "d/B.cfg"],
        vec!["-f", "d/10-b.cfg", "-f", "d"],
    ] {
        let (x, h) = both(&dir, &args);
        let want: Vec<String> = match args.last() {
            Some(&"d") => ["10-b.cfg", "02-a.cfg", "10-b.cfg", "B.cfg"].map(String::from).to_vec(),
            _ => args.iter().filter(|a| a.starts_with("d/")).map(|a| a.trim_start_matches("d/").to_string()).collect(),
        };
        assert_eq!(loaded_order(&x.stderr), want, "{args:?}: {}", x.stderr);
        if let Some(h) = h {
            assert_eq!(normalize(&x.stderr), normalize(&h.stderr), "{args:?}");
            assert_eq!(x.code, h.code, "{args:?}");
        }
    }
}

#[test]
fn if_block_cannot_cross_a_file_boundary() {
    let dir = scratch("crossing");
    write(&dir, "a.cfg", "global\n.if 1\n");
    write(&dir, "b.cfg", ".endif\nlisten l\n    bind 127.0.0.1:18080\n");
    let (x, h) = both(&dir, &["-f", "a.cfg", "-f", "b.cfg"]);
    assert_eq!(x.code, 1);
    let got = normalize(&x.stderr);
    assert!(got.contains(&"[ALERT] config : parsing [a.cfg:2]: non-terminated '.if' block.".to_string()), "{got:?}");
    if let Some(h) = h {
        for line in normalize(&h.stderr) {
            assert!(got.contains(&line), "missing {line}\nhapx: {got:?}");
        }
    }
}

#[test]
fn each_file_starts_outside_any_section() {
    let dir = scratch("boundary");
    write(&dir, "a.cfg", "listen l\n    bind 127.0.0.1:18080\n");
    write(&dir, "b.cfg", "    maxconn 20\n");
    let (x, h) = both(&dir, &["-f", "a.cfg", "-f", "b.cfg"]);
    assert_eq!(x.code, 1);
    let got = normalize(&x.stderr);
    assert!(
        got.contains(&"[ALERT] config : parsing [b.cfg:1]: unknown keyword 'maxconn' out of section.".to_string()),
        "{got:?}"
    );
    if let Some(h) = h {
        assert_eq!(got, normalize(&h.stderr));
    }
}

#[test]
fn missing_file_is_fatal() {
    let dir = scratch("missing");
    let (x, h) = both(&dir, &["-f", "nope.cfg"]);
    assert_eq!(x.code, 1);
    let got = normalize(&x.stderr);
    let want = "[ALERT] config : Cannot open configuration file/directory nope.cfg : No such file or directory";
    assert!(got.contains(&want.to_string()), "{got:?}");
    if let Some(h) = h {
        assert_eq!(x.code, h.code);
        for line in normalize(&h.stderr) {
            assert!(got.contains(&line), "missing {line}\nhapx: {got:?}");
        }
    }
}

#[test]
fn missing_file_prints_only_haproxy_lines() {
    let dir = scratch("missing-only");
    let (x, h) = both(&dir, &["-f", "nope.cfg"]);
    let Some(h) = h else { return };
    assert_eq!(normalize(&x.stderr), normalize(&h.stderr));
}

#[test]
fn missing_file_after_a_good_one_is_fatal() {
    let dir = scratch("missing-second");
    write(&dir, "a.cfg", "listen l\n    bind 127.0.0.1:18080\n");
    let (x, h) = both(&dir, &["-f", "a.cfg", "-f", "nope.d"]);
    assert_eq!(x.code, 1);
    if let Some(h) = h {
        assert_eq!(x.code, h.code);
        for line in normalize(&h.stderr) {
            assert!(normalize(&x.stderr).contains(&line), "missing {line}\nhapx: {}", x.stderr);
        }
    }
}

// ---------------------------------------------------------------------------------------
// --target-version

const TIMEOUTS: &str = "    timeout client 5s\n    timeout connect 5s\n    timeout server 5s\n";

#[test]
fn crt_store_section_is_unknown_in_2_6_and_accepted_in_3_4() {
    let dir = scratch("target-crt-store");
    write(&dir, "a.cfg", &format!("crt-store st\n    crt-base /tmp\nlisten l\n    bind 127.0.0.1:18080\n{TIMEOUTS}"));
    let old = hapx(&dir, &["-c", "--target-version", "2.6", "-f", "a.cfg"]);
    assert_eq!(old.code, 1);
    assert!(normalize(&old.stderr)
        .contains(&"[ALERT] config : parsing [a.cfg:1]: unknown keyword 'crt-store' out of section.".to_string()));
    if let Some(h) = haproxy(&dir, &["-c", "-f", "a.cfg"]) {
        assert_eq!(normalize(&old.stderr), normalize(&h.stderr));
    }
    let new = hapx(&dir, &["-c", "--target-version", "3.4", "-f", "a.cfg"]);
    assert_eq!(new.code, 0, "{}", new.stderr);
    assert!(!new.stderr.contains("[ALERT]"), "{}", new.stderr);
}

#[test]
fn timeout_client_hs_is_unknown_in_2_6_and_accepted_in_3_4() {
    let dir = scratch("target-client-hs");
    write(&dir, "a.cfg", &format!("listen l\n    bind 127.0.0.1:18080\n{TIMEOUTS}    timeout client-hs 5s\n"));
    assert_eq!(hapx(&dir, &["-c", "--target-version", "2.6", "-f", "a.cfg"]).code, 1);
    let new = hapx(&dir, &["-c", "--target-version", "3.4", "-f", "a.cfg"]);
    assert_eq!(new.code, 0, "{}", new.stderr);
}

#[test]
fn balance_log_hash_is_refused_in_2_6() {
    let dir = scratch("target-log-hash");
    write(&dir, "a.cfg", &format!("listen l\n    bind 127.0.0.1:18080\n{TIMEOUTS}    balance log-hash\n"));
    let old = hapx(&dir, &["-c", "--target-version", "2.6", "-f", "a.cfg"]);
    assert_eq!(old.code, 1);
    if let Some(h) = haproxy(&dir, &["-c", "-f", "a.cfg"]) {
        assert_eq!(normalize(&old.stderr), normalize(&h.stderr));
    }
}

// ---------------------------------------------------------------------------------------
// HAProxy's raw line format

/// The tag and padding before the pid, as printed (e.g. `[ALERT]    (`).
fn tag_prefixes(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("[ALERT]") || l.starts_with("[WARNING]"))
        .filter(|l| !l.contains(HAPX_ONLY))
        .filter_map(|l| l.find('(').map(|i| l[..=i].to_string()))
        .collect()
}

#[test]
fn haproxy_format_pads_tags_like_haproxy() {
    let dir = testdata("valid");
    let x = hapx(&dir, &["-c", "--target-version", "2.6", "-f", "time_compound_warns.cfg"]);
    let Some(h) = haproxy(&dir, &["-c", "-f", "time_compound_warns.cfg"]) else {
        return;
    };
    assert_eq!(tag_prefixes(&x.stderr), tag_prefixes(&h.stderr));
    let dir = testdata("invalid");
    let x = hapx(&dir, &["-c", "--target-version", "2.6", "-f", "unknown_keyword_did_you_mean.cfg"]);
    let Some(h) = haproxy(&dir, &["-c", "-f", "unknown_keyword_did_you_mean.cfg"]) else {
        return;
    };
    assert_eq!(tag_prefixes(&x.stderr), tag_prefixes(&h.stderr));
}
