//! HAProxy 2.6's line reader and word splitter (see ../shared/reference/lexical.md, §1-4).
//!
//! Everything here was checked against `haproxy -c` 2.6.12. Rules, in reading order:
//!
//! * File → lines ([`lines`]): lines end at LF. A NUL byte cuts the line short; if more data
//!   follows that line, reading stops with `Stray NUL character at position N.` (N = length
//!   before the NUL + 1); on the last line it gives `Missing LF on last line, file might have
//!   been truncated at position N.` A last line without LF gives the same Missing-LF error
//!   (N = its length + 1) — except when that line is exactly 2^k-1 bytes long (k ≥ 11): 2.6
//!   then silently drops it (its fgets buffer doubling never sees the line end).
//! * Leading blanks (C `isspace`: space, TAB, LF, VT, FF, CR) are skipped. A line that then
//!   starts with `[` is a scope declaration (`[name]`), not words.
//! * Words are split on runs of unquoted space, TAB, VT or FF. CR ends the line, even inside
//!   quotes (so CRLF works) — unless it directly follows a blank, which swallows it. Any
//!   blank after the last word (also before a comment) counts as one more, empty word for the
//!   64-word limit only; it is not returned.
//! * An unquoted `#` starts a comment, anywhere in a word.
//! * Backslash, outside single quotes: `\␠` `\\` `\#` `\'` `\"` give the character, `\t`
//!   `\n` `\r` TAB/LF/CR, `\xHH` the byte (two hex digits or a fatal error), `\$` gives `$`
//!   inside double quotes only; any other `\c` (also `\$` outside quotes, and a trailing `\`)
//!   is kept with its backslash. No line continuation.
//! * `'...'` keeps everything literally; `"..."` keeps blanks, `#`, `'` and expands variables.
//!   Pieces that touch make one word; `""` is an empty word. An unclosed quote is fatal.
//! * Variables, inside double quotes only: `$NAME` (`[A-Za-z_][A-Za-z0-9_]*`), `${NAME}`,
//!   `${NAME-default}` (default when unset; it is raw text up to `}`), `${NAME[*]}` (split on
//!   blanks into several words; empty gives one empty word), `${.FILE}` `${.LINE}`
//!   `${.SECTION}` (from [`LexCtx`]). Unset means empty. Fatal: a bad first name character,
//!   an unclosed `{`, a `[` not followed by `*]`.
//! * At most 64 words; more is fatal (`too many words, truncating after word 64, position N:
//!   <word64>.`, N being the 1-based offset of word 64 in HAProxy's NUL-separated output).
//! * A line whose first word is empty (`"" x`, `"$UNSET" x`, `\x00x`) is ignored by 2.6.
//! * A `\x00` inside a word ends the word as HAProxy's keyword parsers see it (C string).
//!
//! Error positions count bytes from the start of the raw line, 1-based. The echoed line
//! starts after the leading blanks, shows at most 80 columns around the error (with `...`),
//! and prints blanks as spaces and other non-printable bytes (including UTF-8) as `?`.
//! 2.6 writes NULs into its line buffer while expanding (`${X-def}` loses its `}`, a bad
//! `${.NAME}` is cut after the name), so the echo stops there, and a line whose words do not
//! fit HAProxy's output buffer (the first line of each file, or longer lines later) is parsed
//! twice and a `${X-def}` in it fails with `unmatched brace`; [`split_line_tracked`] with one
//! [`OutBuf`] per file reproduces that.
//!
//! Word text is a `String`: bytes that are not valid UTF-8 (from `\xHH` ≥ 0x80 or from the
//! file) go through `String::from_utf8_lossy`.
use crate::check::Frame;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

/// HAProxy's MAX_LINE_ARGS.
const MAX_WORDS: usize = 64;
/// HAProxy's initial LINESIZE for its fgets buffer.
const LINESIZE: usize = 2048;
/// Width of the echoed line in error messages.
const ECHO_WIDTH: usize = 80;

/// Variables for `$X` expansion. Seeded from the process environment by the caller; setenv/
/// presetenv/unsetenv/resetenv in `global` mutate it for the following lines.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    map: HashMap<String, String>,
}

impl Vars {
    /// The process environment, plus `HAPROXY_LOCALPEER` set to the host name as 2.6 does
    /// before reading its configuration (the caller overrides it for `-L`). Names or values
    /// that are not UTF-8 are converted lossily.
    pub fn from_process_env() -> Vars {
        let mut vars = Vars::empty();
        for (k, v) in std::env::vars_os() {
            vars.set(&k.to_string_lossy(), &v.to_string_lossy());
        }
        if let Some(host) = host_name() {
            vars.set("HAPROXY_LOCALPEER", &host);
        }
        vars
    }

    pub fn empty() -> Vars {
        Vars::default()
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }

    /// `setenv`: always overwrites.
    pub fn set(&mut self, k: &str, v: &str) {
        self.map.insert(k.to_string(), v.to_string());
    }

    /// `presetenv`: only when not already set (an empty value counts as set).
    pub fn set_if_absent(&mut self, k: &str, v: &str) {
        if !self.map.contains_key(k) {
            self.set(k, v);
        }
    }

    /// `unsetenv`.
    pub fn unset(&mut self, k: &str) {
        self.map.remove(k);
    }

    /// `resetenv [name...]`: removes every variable except the names listed.
    pub fn reset_keeping(&mut self, keep: &[&str]) {
        self.map.retain(|k, _| keep.contains(&k.as_str()));
    }

    pub fn is_set(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }
}

/// The kernel's host name (what gethostname returns), read without `unsafe`.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim_end_matches('\n').to_string())
}

/// One word after quote removal and expansion. col: 1-based byte column in the raw line of the
/// word's first byte; len: raw byte length of the word in the line (for carets). The words a
/// `${X[*]}` splits into all share the span of the raw token they come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub col: u32,
    pub len: u32,
}

pub struct LexCtx<'a> {
    pub vars: &'a Vars,
    /// For `${.FILE}`.
    pub file: &'a str,
    /// For `${.LINE}`; also stamped on errors.
    pub line: u32,
    /// For `${.SECTION}`: the current section's name (its keyword for `global`, or an unnamed
    /// one); "" before the first section, where 2.6 treats it as unset.
    pub section: &'a str,
}

/// The result of splitting one line. When `errors` is not empty, `words` is empty: 2.6 skips
/// the whole line after any of these errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lexed {
    /// Empty for blank and comment lines, for lines whose first word is empty (2.6 ignores
    /// them), and for scope lines.
    pub words: Vec<Word>,
    pub errors: Vec<LexError>,
    /// The line ended with blanks after its last word (before the end or a comment). 2.6 then
    /// holds one more, empty word: it counts for the 64-word limit, and `.if`/`.elif` rejoin
    /// it, giving the condition a trailing space.
    pub trailing_blank: bool,
    /// `[name]` scope declaration (a line starting with `[`), when valid.
    pub scope: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexErrorKind {
    UnmatchedQuote,
    UnmatchedBrace,
    ForbiddenVarChar,
    BadHex,
    BadWordExpansion,
    /// The 64th word, as HAProxy prints it.
    TooManyWords(String),
    MissingLf,
    StrayNul,
    /// `[]` or `[` without `]`.
    EmptyScope,
    /// A character other than alnum `.` `:` `_` `-` in a scope name.
    ScopeBadChar(char),
    /// Something other than blanks or a comment after `]`.
    ScopeTrailing(char),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub kind: LexErrorKind,
    /// The position HAProxy prints: 1-based byte offset in the raw line (for TooManyWords:
    /// in its output buffer; 0 for scope errors, which print none).
    pub pos: usize,
    /// The line number HAProxy prints with the message.
    pub line: u32,
    /// For caret errors: the echoed line and the caret line, as HAProxy prints them.
    echo: String,
}

impl LexError {
    fn new(kind: LexErrorKind, pos: usize, line: u32) -> LexError {
        LexError { kind, pos, line, echo: String::new() }
    }

    /// HAProxy's text (after `parsing [file:line]: `). Caret errors go on with two more lines,
    /// separated by `\n` (no trailing newline): the echoed line and the caret, both indented
    /// by two spaces.
    pub fn message(&self) -> String {
        let head = match &self.kind {
            LexErrorKind::UnmatchedQuote => "unmatched quote",
            LexErrorKind::UnmatchedBrace => "unmatched brace in environment variable name",
            LexErrorKind::ForbiddenVarChar => "forbidden first char in environment variable name",
            LexErrorKind::BadHex => "truncated or invalid hexadecimal sequence",
            LexErrorKind::BadWordExpansion => "truncated or invalid word expansion sequence",
            LexErrorKind::TooManyWords(w) => {
                return format!("too many words, truncating after word {MAX_WORDS}, position {}: <{w}>.", self.pos)
            }
            LexErrorKind::MissingLf => {
                return format!("Missing LF on last line, file might have been truncated at position {}.", self.pos)
            }
            LexErrorKind::StrayNul => return format!("Stray NUL character at position {}.", self.pos),
            LexErrorKind::EmptyScope => return "empty scope name is forbidden.".to_string(),
            LexErrorKind::ScopeBadChar(c) => return format!("character '{c}' is not permitted in a scope name."),
            LexErrorKind::ScopeTrailing(c) => {
                return format!("character '{c}' is not permitted after scope declaration.")
            }
        };
        format!("{head} at position {}:\n{}", self.pos, self.echo)
    }

    /// Every one of these makes `haproxy -c` fail.
    pub fn is_fatal(&self) -> bool {
        true
    }

    /// Scope-name errors are flagged ERR_ABORT without ERR_FATAL: parsing goes on, but 2.6
    /// stops the file at the next line that reaches a section parser.
    pub fn aborts(&self) -> bool {
        matches!(self.kind, LexErrorKind::ScopeBadChar(_) | LexErrorKind::ScopeTrailing(_))
    }

    /// How HAProxy frames the location: scope errors say `parsing [f:l] : `, the others
    /// `parsing [f:l]: `.
    pub fn frame(&self) -> Frame {
        match self.kind {
            LexErrorKind::EmptyScope | LexErrorKind::ScopeBadChar(_) | LexErrorKind::ScopeTrailing(_) => Frame::Parsing,
            _ => Frame::ParsingTight,
        }
    }
}

/// File bytes → lines, as HAProxy reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawLine<'a> {
    /// 1-based.
    pub number: u32,
    /// Without its LF, cut at the first NUL.
    pub text: &'a [u8],
}

/// Splits a file as 2.6's fgets loop does (a LINESIZE buffer that doubles for long lines).
/// The error (Missing LF or Stray NUL) comes after the returned lines; no line follows a Stray
/// NUL.
pub fn lines(bytes: &[u8]) -> (Vec<RawLine<'_>>, Option<LexError>) {
    let mut out = Vec::new();
    let mut linesize = LINESIZE;
    let mut pos = 0usize;
    let mut line_start = 0usize;
    let mut readbytes = 0usize;
    let mut linenum = 0u32;
    let mut missing_lf: Option<usize> = None;
    while pos < bytes.len() {
        // fgets: at most linesize - readbytes - 1 bytes, up to and including an LF.
        let maxread = linesize - readbytes - 1;
        let window = bytes.get(pos..bytes.len().min(pos + maxread)).unwrap_or(&[]);
        pos += match window.iter().position(|&b| b == b'\n') {
            Some(k) => k + 1,
            None => window.len(),
        };
        if let Some(m) = missing_lf {
            return (out, Some(LexError::new(LexErrorKind::StrayNul, m + 1, linenum)));
        }
        linenum += 1;
        let buf = bytes.get(line_start..pos).unwrap_or(&[]);
        let strlen = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let last = strlen.checked_sub(1).and_then(|i| buf.get(i)).copied();
        if strlen == linesize - 1 && last != Some(b'\n') {
            // Buffer full without a line end: 2.6 doubles it and reads on.
            readbytes = linesize - 1;
            linesize *= 2;
            linenum -= 1;
            continue;
        }
        readbytes = 0;
        let text = if last == Some(b'\n') {
            buf.get(..strlen - 1).unwrap_or(&[])
        } else {
            missing_lf = Some(strlen);
            buf.get(..strlen).unwrap_or(&[])
        };
        out.push(RawLine { number: linenum, text });
        line_start = pos;
    }
    let err = missing_lf.map(|m| LexError::new(LexErrorKind::MissingLf, m + 1, linenum));
    (out, err)
}

/// The size of HAProxy's per-file output buffer for words; see [`split_line_tracked`].
#[derive(Clone, Debug, Default)]
pub struct OutBuf {
    size: usize,
}

impl OutBuf {
    /// A fresh buffer, as at the start of each file.
    pub fn new() -> OutBuf {
        OutBuf::default()
    }
}

/// Splits one raw line (as given by [`lines`]) into words. Assumes HAProxy's output buffer is
/// already large enough; see [`split_line_tracked`] for the exact 2.6 behaviour.
pub fn split_line(line: &[u8], ctx: &LexCtx) -> Lexed {
    let mut big = OutBuf { size: usize::MAX };
    split_line_tracked(line, ctx, &mut big)
}

/// Like [`split_line`], with the state of 2.6's output buffer (one [`OutBuf`] per file, fed
/// every line in order). When a line needs more room than the buffer has, 2.6 grows it and
/// parses the line again; the first pass has replaced each `${X-def}`'s `}` with a NUL, so
/// the second fails with `unmatched brace`. This hits the first line of every file.
pub fn split_line_tracked(line: &[u8], ctx: &LexCtx, buf: &mut OutBuf) -> Lexed {
    // HAProxy sees a C string.
    let line = match line.iter().position(|&b| b == 0) {
        Some(n) => line.get(..n).unwrap_or(&[]),
        None => line,
    };
    let start = line.iter().position(|&b| !is_space(b)).unwrap_or(line.len());
    if line.get(start) == Some(&b'[') {
        return scope(line, start, ctx.line);
    }
    let first = Pass::run(line, start, ctx, &[]);
    if first.error.is_some() {
        return first.finish(line, start, ctx.line);
    }
    if first.outpos > buf.size {
        buf.size = first.outpos.div_ceil(1024) * 1024;
        if !first.cuts.is_empty() {
            let mut second = Pass::run(line, start, ctx, &first.cuts);
            // The echo shows the buffer as both passes left it.
            second.cuts.extend_from_slice(&first.cuts);
            return second.finish(line, start, ctx.line);
        }
    }
    first.finish(line, start, ctx.line)
}

/// C `isspace` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b.wrapping_sub(b'A').wrapping_add(10),
    }
}

/// A `[name]` line.
fn scope(line: &[u8], start: usize, lineno: u32) -> Lexed {
    let mut lexed = Lexed::default();
    let beg = start + 1;
    let rest = line.get(beg..).unwrap_or(&[]);
    let Some(close) = rest.iter().position(|&b| b == b']').filter(|&n| n > 0) else {
        lexed.errors.push(LexError::new(LexErrorKind::EmptyScope, 0, lineno));
        return lexed;
    };
    let name = rest.get(..close).unwrap_or(&[]);
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'_' | b'-');
    if let Some(&bad) = name.iter().find(|&&b| !ok(b)) {
        lexed.errors.push(LexError::new(LexErrorKind::ScopeBadChar(byte_char(bad)), 0, lineno));
        return lexed;
    }
    let after = rest.get(close + 1..).unwrap_or(&[]);
    if let Some(&c) = after.iter().find(|&&b| !is_space(b)) {
        if c != b'#' {
            lexed.errors.push(LexError::new(LexErrorKind::ScopeTrailing(byte_char(c)), 0, lineno));
            return lexed;
        }
    }
    lexed.scope = Some(String::from_utf8_lossy(name).into_owned());
    lexed
}

/// A byte printed with `%c`: non-ASCII bytes cannot be kept as such in a String.
fn byte_char(b: u8) -> char {
    if b.is_ascii() {
        b as char
    } else {
        char::REPLACEMENT_CHARACTER
    }
}

/// A word being built, with HAProxy's bookkeeping.
#[derive(Default)]
struct Pass {
    words: Vec<Word>,
    cur: Vec<u8>,
    /// Something (a quote, a byte, a `[*]` split) made the current word real.
    touched: bool,
    /// Index in `words` of the first word of the current raw token, and its start offset.
    token_first: usize,
    token_start: usize,
    /// HAProxy's `arg`: index of the current word, counting the trailing empty one.
    arg: usize,
    /// Bytes HAProxy emits (words and their NUL terminators).
    outpos: usize,
    /// outpos at the start of the current word.
    word_outpos: usize,
    /// Word 64 and its output position, once the limit is passed.
    too_many: Option<(usize, String)>,
    /// Offsets where 2.6 wrote a NUL into its line (the `}` of each `${X-def}`, and the end
    /// of a bad `${.NAME}`), for the echo and for the second pass.
    cuts: Vec<usize>,
    /// The first fatal error: kind and 0-based offset in the line.
    error: Option<(LexErrorKind, usize)>,
    trailing_blank: bool,
}

impl Pass {
    fn run(line: &[u8], start: usize, ctx: &LexCtx, cuts: &[usize]) -> Pass {
        let mut p = Pass { token_start: start, ..Pass::default() };
        let mut i = start;
        let mut squote = false;
        let mut dquote = false;
        // Offset of the quote left open, if any.
        let mut quote: Option<usize> = None;
        let at = |j: usize| line.get(j).copied().unwrap_or(0);
        loop {
            let c = at(i);
            match c {
                0 | b'\n' | b'\r' => break,
                b'#' if !squote && !dquote => break,
                b'"' if !squote => {
                    dquote = !dquote;
                    quote = if dquote { Some(i) } else { None };
                    p.touched = true;
                    i += 1;
                }
                b'\'' if !dquote => {
                    squote = !squote;
                    quote = if squote { Some(i) } else { None };
                    p.touched = true;
                    i += 1;
                }
                b'\\' if !squote => {
                    let next = at(i + 1);
                    let byte = match next {
                        b' ' | b'\\' | b'#' | b'\'' | b'"' => {
                            i += 1;
                            next
                        }
                        b't' => {
                            i += 1;
                            b'\t'
                        }
                        b'n' => {
                            i += 1;
                            b'\n'
                        }
                        b'r' => {
                            i += 1;
                            b'\r'
                        }
                        b'$' if dquote => {
                            i += 1;
                            b'$'
                        }
                        b'x' => {
                            let (h1, h2) = (at(i + 2), at(i + 3));
                            if !is_hex(h1) || !is_hex(h2) {
                                p.error = Some((LexErrorKind::BadHex, i));
                                break;
                            }
                            i += 3;
                            (hex_val(h1) << 4) | hex_val(h2)
                        }
                        _ => b'\\',
                    };
                    i += 1;
                    p.emit(byte);
                }
                b' ' | b'\t' | 0x0b | 0x0c if !squote && !dquote => {
                    let blank = i;
                    // A blank run also swallows CR and LF, which would otherwise end the line.
                    while is_space(at(i)) {
                        i += 1;
                    }
                    p.finish_word();
                    p.set_token_span(blank);
                    p.next_word();
                    p.token_start = i;
                    p.token_first = p.words.len();
                    let next = at(i);
                    if next == 0 || next == b'\n' || next == b'\r' || next == b'#' {
                        p.trailing_blank = true;
                    }
                }
                b'$' if dquote => {
                    if let Err(e) = p.variable(line, &mut i, ctx, cuts) {
                        p.error = Some(e);
                        break;
                    }
                }
                _ => {
                    // Copy the run of bytes that mean nothing in the current state.
                    let run = line
                        .get(i..)
                        .unwrap_or(&[])
                        .iter()
                        .position(|&b| special(b, squote, dquote))
                        .unwrap_or(line.len().saturating_sub(i))
                        .max(1);
                    let bytes = line.get(i..i + run).unwrap_or(&[]);
                    p.emit_slice(bytes);
                    i += run;
                }
            }
        }
        if p.error.is_none() {
            if let Some(q) = quote {
                p.error = Some((LexErrorKind::UnmatchedQuote, q));
            }
        }
        // The final NUL.
        p.finish_word();
        p.set_token_span(i);
        p
    }

    fn emit(&mut self, b: u8) {
        self.cur.push(b);
        self.outpos += 1;
        self.touched = true;
    }

    fn emit_slice(&mut self, b: &[u8]) {
        self.cur.extend_from_slice(b);
        self.outpos += b.len();
        self.touched = true;
    }

    /// Ends the current word (its NUL terminator) and keeps it if within the limit.
    fn finish_word(&mut self) {
        self.outpos += 1;
        let bytes = std::mem::take(&mut self.cur);
        if self.arg < MAX_WORDS {
            // Keyword parsers read C strings: a `\x00` ends the word for them.
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            let text = match String::from_utf8(bytes) {
                Ok(mut s) => {
                    s.truncate(end);
                    s
                }
                Err(e) => String::from_utf8_lossy(e.as_bytes().get(..end).unwrap_or(&[])).into_owned(),
            };
            if self.arg == MAX_WORDS - 1 {
                self.too_many = Some((self.word_outpos + 1, text.clone()));
            }
            if self.touched {
                self.words.push(Word { text, col: 0, len: 0 });
            }
        }
    }

    /// Starts the next word after a separator (blank run or `[*]` split).
    fn next_word(&mut self) {
        self.arg += 1;
        self.word_outpos = self.outpos;
        self.touched = false;
        self.trailing_blank = false;
    }

    /// Gives the raw token that ends at `end` its span, on every word it produced.
    fn set_token_span(&mut self, end: usize) {
        let col = u32::try_from(self.token_start + 1).unwrap_or(u32::MAX);
        let len = u32::try_from(end.saturating_sub(self.token_start)).unwrap_or(u32::MAX);
        for w in self.words.iter_mut().skip(self.token_first) {
            w.col = col;
            w.len = len;
        }
    }

    /// `$NAME`, `${NAME}`, `${NAME-default}`, `${NAME[*]}`, at `line[*i] == '$'`.
    fn variable(
        &mut self,
        line: &[u8],
        i: &mut usize,
        ctx: &LexCtx,
        cuts: &[usize],
    ) -> Result<(), (LexErrorKind, usize)> {
        let at = |j: usize| {
            if cuts.contains(&j) {
                0
            } else {
                line.get(j).copied().unwrap_or(0)
            }
        };
        self.touched = true;
        let mut j = *i + 1;
        let brace = if at(j) == b'{' {
            j += 1;
            Some(j - 1)
        } else {
            None
        };
        let first = at(j);
        if !(first.is_ascii_alphabetic() || first == b'_' || first == b'.') {
            return Err((LexErrorKind::ForbiddenVarChar, j));
        }
        let name_start = j;
        if first == b'.' {
            j += 1;
        }
        while at(j).is_ascii_alphanumeric() || at(j) == b'_' {
            j += 1;
        }
        let name = line.get(name_start..j).unwrap_or(&[]);
        let mut value: Option<Cow<'_, [u8]>> = if name.first() == Some(&b'.') {
            match name {
                b".LINE" => Some(Cow::Owned(ctx.line.to_string().into_bytes())),
                b".FILE" => Some(Cow::Borrowed(ctx.file.as_bytes())),
                b".SECTION" if ctx.section.is_empty() => None,
                b".SECTION" => Some(Cow::Borrowed(ctx.section.as_bytes())),
                _ => {
                    // 2.6 leaves its line cut after the name.
                    self.cuts.push(j);
                    return Err((LexErrorKind::ForbiddenVarChar, name_start));
                }
            }
        } else {
            std::str::from_utf8(name).ok().and_then(|n| ctx.vars.get(n)).map(|v| Cow::Borrowed(v.as_bytes()))
        };
        let mut expand = false;
        if at(j) == b'[' && brace.is_some() {
            if at(j + 1) != b'*' || at(j + 2) != b']' {
                return Err((LexErrorKind::BadWordExpansion, j));
            }
            expand = true;
            j += 3;
        }
        if let Some(b) = brace {
            if at(j) == b'-' {
                let mut k = j;
                while at(k) != 0 && at(k) != b'}' {
                    k += 1;
                }
                if at(k) == 0 {
                    return Err((LexErrorKind::UnmatchedBrace, b));
                }
                if value.is_none() {
                    value = Some(Cow::Borrowed(line.get(j + 1..k).unwrap_or(&[])));
                }
                self.cuts.push(k);
                j = k;
            } else if at(j) != b'}' {
                return Err((LexErrorKind::UnmatchedBrace, b));
            }
            j += 1;
        }
        *i = j;
        if let Some(v) = value {
            if expand {
                let mut k = 0;
                while let Some(&b) = v.get(k) {
                    if is_space(b) {
                        self.finish_word();
                        self.next_word();
                        self.touched = true;
                        while v.get(k).copied().is_some_and(is_space) {
                            k += 1;
                        }
                    } else {
                        self.emit(b);
                        k += 1;
                    }
                }
            } else {
                self.emit_slice(&v);
            }
        }
        Ok(())
    }

    fn finish(mut self, line: &[u8], start: usize, lineno: u32) -> Lexed {
        let mut lexed = Lexed::default();
        if let Some((kind, off)) = self.error.take() {
            let mut e = LexError::new(kind, off + 1, lineno);
            e.echo = echo(line, start, off, &self.cuts);
            lexed.errors.push(e);
            return lexed;
        }
        if self.arg >= MAX_WORDS {
            let (pos, word) = self.too_many.take().unwrap_or_default();
            lexed.errors.push(LexError::new(LexErrorKind::TooManyWords(word), pos, lineno));
            return lexed;
        }
        lexed.trailing_blank = self.trailing_blank;
        if self.words.first().is_some_and(|w| !w.text.is_empty()) {
            lexed.words = self.words;
        }
        lexed
    }
}

/// Bytes that end a plain run in the given quoting state.
fn special(b: u8, squote: bool, dquote: bool) -> bool {
    match b {
        0 | b'\n' | b'\r' | b'\'' => true,
        b'"' => !squote,
        b'\\' => !squote,
        b'$' => dquote,
        b'#' | b' ' | b'\t' | 0x0b | 0x0c => !squote && !dquote,
        _ => false,
    }
}

/// The two lines HAProxy prints under a caret error: the line from `start` (its buffer cut at
/// the first of `cuts`), at most 80 columns around `off`, then the caret.
fn echo(line: &[u8], start: usize, off: usize, cuts: &[usize]) -> String {
    let visible = |j: usize| -> u8 {
        if cuts.contains(&j) {
            0
        } else {
            line.get(j).copied().unwrap_or(0)
        }
    };
    let pos = off.saturating_sub(start);
    let mut shown = String::with_capacity(ECHO_WIDTH + 8);
    let (mut from, limit, newpos) = if pos >= ECHO_WIDTH {
        let shift = pos - ECHO_WIDTH / 2;
        shown.push_str("...");
        (start + shift + 3, ECHO_WIDTH - 6, pos - shift)
    } else {
        (start, ECHO_WIDTH, pos)
    };
    let mut n = 0;
    while n < limit {
        let b = visible(from);
        if b == 0 {
            break;
        }
        shown.push(if is_space(b) {
            ' '
        } else if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '?'
        });
        from += 1;
        n += 1;
    }
    if pos >= ECHO_WIDTH {
        shown.push_str("...");
    }
    let mut out = String::with_capacity(shown.len() + newpos + 8);
    let _ = write!(out, "  {shown}\n  {:>w$}", "^", w = newpos + 1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_vars() -> Vars {
        let mut v = Vars::empty();
        for (k, val) in [
            ("ONE", "1"),
            ("ONEx", "2"),
            ("LIST", "a b c"),
            ("L", "a  b "),
            ("L2", " a"),
            ("E", ""),
            ("KW", "maxconn"),
            ("HOME", "/root"),
        ] {
            v.set(k, val);
        }
        v
    }

    fn lex_in(line: &str, vars: &Vars, section: &str) -> Lexed {
        let ctx = LexCtx { vars, file: "t.cfg", line: 7, section };
        split_line(line.as_bytes(), &ctx)
    }

    fn lex(line: &str) -> Lexed {
        lex_in(line, &test_vars(), "global")
    }

    /// The words of a line that must lex without error.
    fn words(line: &str) -> Vec<String> {
        let l = lex(line);
        assert!(l.errors.is_empty(), "{line:?}: {:?}", l.errors);
        l.words.into_iter().map(|w| w.text).collect()
    }

    /// The single error of a line, as HAProxy prints it.
    fn error(line: &str) -> String {
        let l = lex(line);
        assert_eq!(l.errors.len(), 1, "{line:?}: {l:?}");
        assert!(l.words.is_empty());
        l.errors[0].message()
    }

    // §1 Files, lines and words

    #[test]
    fn line_is_keyword_and_arguments_with_blanks_ignored() {
        assert_eq!(words("    maxconn   100   "), ["maxconn", "100"]);
        assert_eq!(words(""), Vec::<String>::new());
    }

    #[test]
    fn blank_runs_of_spaces_and_tabs_separate_words() {
        assert_eq!(words("\t\t.notice\t \t\"x y\"   "), [".notice", "x y"]);
        // VT and FF are blanks too (C isspace).
        assert_eq!(words(".notice a\x0bb\x0cc"), [".notice", "a", "b", "c"]);
    }

    #[test]
    fn trailing_backslash_is_literal_and_no_continuation() {
        assert_eq!(words(".notice abc\\"), [".notice", "abc\\"]);
        assert_eq!(error(".notice \"a\\"), "unmatched quote at position 9:\n  .notice \"a\\\n          ^");
    }

    #[test]
    fn more_than_64_words_is_fatal_with_word_64_shown() {
        let w63: String = (2..=64).map(|i| format!(" w{i}")).collect();
        let ok = format!(".notice{w63}");
        assert_eq!(words(&ok).len(), 64);
        let msg = "too many words, truncating after word 64, position 249: <w64>.";
        for extra in [" x", " ", " # c", "\t\r", " \"x y\" z"] {
            let l = lex(&format!("{ok}{extra}"));
            assert_eq!(l.errors.len(), 1, "{extra:?}");
            assert_eq!(l.errors[0].message(), msg);
            assert!(l.errors[0].is_fatal());
            assert!(l.words.is_empty());
        }
        // A bare CR ends the line without being a blank.
        assert_eq!(words(&format!("{ok}\r")).len(), 64);
    }

    #[test]
    fn position_of_word_64_counts_output_bytes() {
        // Word 64 starts after 63 words of 3 output bytes ("ab" + NUL) each.
        let line: String = (0..65).map(|_| "'a'b ").collect();
        let l = lex(&line);
        assert_eq!(l.errors[0].message(), "too many words, truncating after word 64, position 190: <ab>.");
    }

    #[test]
    fn long_lines_are_accepted() {
        let line = format!(".notice {}", "x".repeat(100_000));
        assert_eq!(words(&line)[1].len(), 100_000);
        let file = format!("{line}\n");
        let (ls, err) = lines(file.as_bytes());
        assert_eq!(ls.len(), 1);
        assert_eq!(ls[0].text.len(), line.len());
        assert!(err.is_none());
    }

    #[test]
    fn missing_lf_on_last_line_reports_length_plus_one() {
        let (ls, err) = lines(b".notice a\n.notice b");
        assert_eq!(ls.len(), 2);
        assert_eq!(ls[1].text, b".notice b");
        let e = err.unwrap();
        assert_eq!(e.line, 2);
        assert!(e.is_fatal());
        assert_eq!(e.message(), "Missing LF on last line, file might have been truncated at position 10.");
        let (_, err) = lines(b"x");
        assert_eq!(err.unwrap().pos, 2);
        // A last line of exactly 2047 or 4095 bytes is silently dropped by 2.6.
        for n in [2047, 4095] {
            let mut f = b".notice a\n".to_vec();
            f.extend(std::iter::repeat_n(b'y', n));
            let (ls, err) = lines(&f);
            assert_eq!((ls.len(), err), (1, None), "{n}");
        }
        let mut f = b".notice a\n".to_vec();
        f.extend(std::iter::repeat_n(b'y', 2048));
        assert_eq!(lines(&f).1.unwrap().pos, 2049);
        assert_eq!(lines(b"").0.len(), 0);
    }

    #[test]
    fn crlf_cr_counts_as_line_end() {
        let (ls, err) = lines(b"global\r\n    maxconn 10\r\n");
        assert!(err.is_none());
        assert_eq!(ls[1].text, b"    maxconn 10\r");
        assert_eq!(words("    maxconn 10\r"), ["maxconn", "10"]);
        // A CR ends the line even inside quotes or mid-word...
        assert_eq!(words(".notice a\rb c"), [".notice", "a"]);
        assert_eq!(error(".notice \"a\rb\""), "unmatched quote at position 9:\n  .notice \"a b\"\n          ^");
        // ...but a blank run swallows it, and it is skipped as leading blank.
        assert_eq!(words(".notice a \rb"), [".notice", "a", "b"]);
        assert_eq!(words("\r\x0b.notice c"), [".notice", "c"]);
    }

    #[test]
    fn utf8_bom_sticks_to_first_word() {
        assert_eq!(words("\u{feff}global"), ["\u{feff}global"]);
    }

    #[test]
    fn nul_byte_ends_line_and_stray_nul_stops_reading() {
        // On the last line: Missing LF at the NUL.
        let (ls, err) = lines(b".notice a\n.notice b\0c\n");
        assert_eq!(ls[1].text, b".notice b");
        assert_eq!(err.unwrap().message(), "Missing LF on last line, file might have been truncated at position 10.");
        // With more lines after: that line is still parsed, then reading stops.
        let (ls, err) = lines(b".notice a\n.notice \"b\0c\"\n.notice d\n");
        assert_eq!(ls.len(), 2);
        let e = err.unwrap();
        assert_eq!((e.line, e.message().as_str()), (2, "Stray NUL character at position 11."));
        let (ls, err) = lines(b".notice a\n\0\n.notice x\n");
        assert_eq!(ls.len(), 2);
        assert_eq!(err.unwrap().message(), "Stray NUL character at position 1.");
        // A NUL line longer than the buffer reads on as a new chunk: Stray NUL.
        let mut f = b".notice a\n.notice b\0".to_vec();
        f.extend(std::iter::repeat_n(b'y', 3000));
        f.push(b'\n');
        assert_eq!(lines(&f).1.unwrap().message(), "Stray NUL character at position 10.");
        // split_line itself stops at a NUL too.
        assert_eq!(words(".notice a\0b"), [".notice", "a"]);
    }

    #[test]
    fn keywords_keep_their_case() {
        assert_eq!(words("MaxConn 10"), ["MaxConn", "10"]);
    }

    #[test]
    fn quotes_and_escapes_apply_to_the_keyword() {
        assert_eq!(words("\"maxconn\" 10"), ["maxconn", "10"]);
        assert_eq!(words("max\"conn\" 11"), ["maxconn", "11"]);
        assert_eq!(words("foo\\ bar 1"), ["foo bar", "1"]);
    }

    // §2 Comments

    #[test]
    fn unquoted_hash_starts_comment_even_mid_word() {
        assert_eq!(words(".notice abc#def"), [".notice", "abc"]);
        assert_eq!(words("maxconn 10#note"), ["maxconn", "10"]);
        // The quote after the comment is not seen.
        assert_eq!(words(".notice abc#def \"x"), [".notice", "abc"]);
    }

    #[test]
    fn quoted_or_escaped_hash_is_literal() {
        assert_eq!(words("\"abc#def\" 'abc#def' abc\\#def"), ["abc#def"; 3]);
    }

    #[test]
    fn comment_and_blank_lines_give_no_words() {
        for l in ["# x", "    # indented", "", "   \t", "\r"] {
            assert_eq!(words(l), Vec::<String>::new(), "{l:?}");
        }
    }

    #[test]
    fn comments_after_conditional_directives() {
        let l = lex(".if 1 # why");
        assert_eq!(l.words.len(), 2);
        assert!(l.trailing_blank);
        assert_eq!(words(".endif # end"), [".endif"]);
    }

    // §3.1 Outside quotes

    #[test]
    fn backslash_space_is_literal_space() {
        assert_eq!(words("a\\ b"), ["a b"]);
    }

    #[test]
    fn double_backslash_is_one_backslash() {
        assert_eq!(words("a\\\\b"), ["a\\b"]);
    }

    #[test]
    fn escaped_quotes_are_literal() {
        assert_eq!(words("\\'\\\""), ["'\""]);
    }

    #[test]
    fn escaped_hash_is_literal() {
        assert_eq!(words("a\\#b"), ["a#b"]);
    }

    #[test]
    fn backslash_t_n_r_give_control_characters() {
        assert_eq!(words("a\\tb\\nc\\rd"), ["a\tb\nc\rd"]);
    }

    #[test]
    fn hex_escape_needs_two_digits() {
        assert_eq!(words("\\x41\\x6a"), ["Aj"]);
        assert_eq!(
            error(".notice a\\x4g"),
            "truncated or invalid hexadecimal sequence at position 10:\n  .notice a\\x4g\n           ^"
        );
        assert_eq!(
            error(".notice a\\x4").lines().next().unwrap(),
            "truncated or invalid hexadecimal sequence at position 10:"
        );
        // Bytes that are not UTF-8 go through from_utf8_lossy; \x00 ends the word.
        assert_eq!(words("\\xc3\\xa9 \\xff a\\x00b"), ["é", "\u{fffd}", "a"]);
        // A line whose first word is empty is ignored.
        assert_eq!(words("\\x00abc maxconn 1"), Vec::<String>::new());
    }

    #[test]
    fn backslash_dollar_outside_quotes_keeps_backslash() {
        assert_eq!(words("\\$X"), ["\\$X"]);
    }

    #[test]
    fn unknown_escape_keeps_backslash() {
        assert_eq!(words("a\\qb \\1"), ["a\\qb", "\\1"]);
    }

    #[test]
    fn dollar_outside_quotes_is_literal() {
        assert_eq!(words("$HOME ${HOME} $5"), ["$HOME", "${HOME}", "$5"]);
    }

    // §3.2 Double quotes

    #[test]
    fn double_quotes_keep_blanks_hash_and_single_quote() {
        assert_eq!(words("\"a b\t#'c\""), ["a b\t#'c"]);
    }

    #[test]
    fn double_quotes_process_escapes_and_backslash_dollar() {
        assert_eq!(words("\"\\\"\\'\\#\\ \\$\\q\\x41\\t\""), ["\"'# $\\qA\t"]);
    }

    #[test]
    fn double_quotes_expand_variables() {
        assert_eq!(words("\"$HOME/x\""), ["/root/x"]);
    }

    #[test]
    fn unterminated_double_quote_reports_position() {
        assert_eq!(
            error("\t  .notice \u{e9}\t\"abc"),
            "unmatched quote at position 15:\n  .notice ??\u{20}\"abc\n             ^"
        );
    }

    // §3.3 Single quotes

    #[test]
    fn single_quotes_keep_everything() {
        assert_eq!(
            words("'a\\nb' 'a\\x41b' 'a$HOME' 'a\\\\b' 'a\"b'"),
            ["a\\nb", "a\\x41b", "a$HOME", "a\\\\b", "a\"b"]
        );
    }

    #[test]
    fn single_quote_cannot_be_escaped_inside_single_quotes() {
        assert_eq!(error("'a\\'b' y"), "unmatched quote at position 6:\n  'a\\'b' y\n       ^");
        assert_eq!(words("\\' \"'\""), ["'", "'"]);
    }

    // §3.4 Word assembly

    #[test]
    fn touching_pieces_form_one_word() {
        assert_eq!(words("\"a\"'b'c\\ d\"e f\""), ["abc de f"]);
    }

    #[test]
    fn empty_quotes_give_an_empty_word() {
        assert_eq!(words(".notice \"\" ''"), [".notice", "", ""]);
        assert_eq!(words("setenv X \"\""), ["setenv", "X", ""]);
        // ...but a line starting with one is ignored by 2.6.
        assert_eq!(words("\"\" maxconn 1"), Vec::<String>::new());
    }

    // §3.5 Second-level arguments (the lexer's share)

    #[test]
    fn space_inside_parentheses_splits_the_word() {
        assert_eq!(words("req.payload(0, 4)"), ["req.payload(0,", "4)"]);
    }

    #[test]
    fn braces_need_blanks_around_them() {
        assert_eq!(words("if {src 1.2.3.4}"), ["if", "{src", "1.2.3.4}"]);
        assert_eq!(words("if { src 1.2.3.4 }"), ["if", "{", "src", "1.2.3.4", "}"]);
    }

    // §4 Environment variables

    #[test]
    fn variables_expand_only_inside_double_quotes() {
        assert_eq!(words("maxconn $ONE"), ["maxconn", "$ONE"]);
        assert_eq!(words("maxconn \"$ONE\""), ["maxconn", "1"]);
    }

    #[test]
    fn variable_name_is_longest_run() {
        assert_eq!(words("\"$ONEx\" \"$ONE-x\" \"$_\""), ["2", "1-x", ""]);
    }

    #[test]
    fn braces_delimit_the_name() {
        assert_eq!(words("\"${ONE}x\""), ["1x"]);
    }

    #[test]
    fn default_applies_only_when_unset() {
        assert_eq!(words("\"${U-def val}\" \"${E-def}\" \"${ONE-def}\" \"${U-a\"b}\""), ["def val", "", "1", "a\"b"]);
        assert_eq!(
            error(".notice \"${X-abc\""),
            "unmatched brace in environment variable name at position 11:\n  .notice \"${X-abc\"\n            ^"
        );
    }

    #[test]
    fn word_expansion_splits_on_blanks() {
        assert_eq!(words("setenv X \"${LIST[*]}\""), ["setenv", "X", "a", "b", "c"]);
        // Leading and trailing blanks in the value make empty words, as in 2.6.
        assert_eq!(words("\"${L[*]}\" x"), ["a", "b", "", "x"]);
        assert_eq!(words(".n \"${L2[*]}x\" y"), [".n", "", "ax", "y"]);
        assert_eq!(words(".n \"${U[*]-p  q}\" y"), [".n", "p", "q", "y"]);
        // Only inside braces.
        assert_eq!(words("\"$LIST[*]\""), ["a b c[*]"]);
        assert_eq!(
            error(".notice \"${X[*}\""),
            "truncated or invalid word expansion sequence at position 13:\n  .notice \"${X[*}\"\n              ^"
        );
        assert_eq!(
            error(".notice \"${X[]}\"").lines().next().unwrap(),
            "truncated or invalid word expansion sequence at position 13:"
        );
    }

    #[test]
    fn word_expansion_pieces_share_the_token_span() {
        let l = lex("setenv X \"${LIST[*]}\" z");
        let spans: Vec<(u32, u32)> = l.words.iter().map(|w| (w.col, w.len)).collect();
        assert_eq!(spans, [(1, 6), (8, 1), (10, 12), (10, 12), (10, 12), (23, 1)]);
    }

    #[test]
    fn empty_word_expansion_gives_one_empty_word() {
        assert_eq!(words(".n \"${E[*]}\" x"), [".n", "", "x"]);
        assert_eq!(words(".n \"${U[*]}\" x"), [".n", "", "x"]);
    }

    #[test]
    fn unset_variable_is_empty() {
        assert_eq!(words(".n \"$UNSET\" \"a${UNSET}b\""), [".n", "", "ab"]);
    }

    #[test]
    fn forbidden_first_char_in_variable_name() {
        assert_eq!(
            error(".notice \"$5\""),
            "forbidden first char in environment variable name at position 11:\n  .notice \"$5\"\n            ^"
        );
        assert_eq!(
            error(".notice \"${5}\"").lines().next().unwrap(),
            "forbidden first char in environment variable name at position 12:"
        );
        assert_eq!(
            error(".notice \"$\"").lines().next().unwrap(),
            "forbidden first char in environment variable name at position 11:"
        );
        assert_eq!(
            error(".notice \"a$\"").lines().next().unwrap(),
            "forbidden first char in environment variable name at position 12:"
        );
        assert_eq!(words("\"cost \\$5\""), ["cost $5"]);
    }

    #[test]
    fn unclosed_brace_is_fatal() {
        assert_eq!(
            error(".notice \"${X\""),
            "unmatched brace in environment variable name at position 11:\n  .notice \"${X\"\n            ^"
        );
        assert_eq!(
            error(".notice \"${X y}\"").lines().next().unwrap(),
            "unmatched brace in environment variable name at position 11:"
        );
    }

    #[test]
    fn pseudo_variables_come_from_context() {
        assert_eq!(words("\"${.FILE}\" \"$.LINE\" \"${.SECTION}\""), ["t.cfg", "7", "global"]);
        // Before any section it is unset.
        let l = lex_in(".n \"${.SECTION-none}\" \"${.SECTION}\"", &test_vars(), "");
        let w: Vec<_> = l.words.into_iter().map(|w| w.text).collect();
        assert_eq!(w, [".n", "none", ""]);
        // Other dotted names are refused; 2.6 echoes the line cut after the name.
        assert_eq!(
            error(".notice \"${.FOO}\""),
            "forbidden first char in environment variable name at position 12:\n  .notice \"${.FOO\n             ^"
        );
        assert_eq!(
            error(".notice \"$.\""),
            "forbidden first char in environment variable name at position 11:\n  .notice \"$.\n            ^"
        );
    }

    #[test]
    fn setenv_family_changes_later_lines() {
        let mut v = test_vars();
        v.set("N", "5");
        assert_eq!(lex_in("\"$N\"", &v, "global").words[0].text, "5");
        v.set_if_absent("N", "6");
        v.set_if_absent("E", "7");
        v.set_if_absent("NEW", "8");
        assert_eq!((v.get("N"), v.get("E"), v.get("NEW")), (Some("5"), Some(""), Some("8")));
        v.unset("N");
        assert!(!v.is_set("N"));
        v.reset_keeping(&["ONE", "NOPE"]);
        assert!(v.is_set("ONE") && !v.is_set("LIST") && !v.is_set("NOPE"));
    }

    #[test]
    fn variable_may_supply_the_keyword() {
        assert_eq!(words("\"$KW\" 100"), ["maxconn", "100"]);
    }

    #[test]
    fn process_env_sets_localpeer() {
        let v = Vars::from_process_env();
        assert!(v.is_set("HAPROXY_LOCALPEER"));
        assert!(!v.is_set("HAPROXY_CFGFILES") || std::env::var_os("HAPROXY_CFGFILES").is_some());
    }

    // The echo, the output buffer and scopes

    #[test]
    fn echo_is_cut_to_80_columns_around_the_error() {
        let line = format!(".notice {} \"abc", "x".repeat(100));
        assert_eq!(
            error(&line),
            format!("unmatched quote at position 110:\n  ...{} \"abc...\n  {}^", "x".repeat(36), " ".repeat(40))
        );
        let line = format!(".notice {} \"abc def ghi jkl mno pqr stu vwx", "x".repeat(60));
        assert_eq!(
            error(&line),
            format!(
                "unmatched quote at position 70:\n  .notice {} \"abc def gh\n  {}^",
                "x".repeat(60),
                " ".repeat(69)
            )
        );
    }

    #[test]
    fn echo_stops_where_a_default_lost_its_brace() {
        assert_eq!(
            error(".notice \"${U-a}\" \"${U-b}\" \"c"),
            "unmatched quote at position 27:\n  .notice \"${U-a\n                            ^"
        );
        let line = format!(".notice {} \"${{Z-abc}}\" \"{}", "a".repeat(90), "b".repeat(50));
        assert_eq!(
            error(&line),
            format!("unmatched quote at position 111:\n  ...{} \"${{Z-abc...\n  {}^", "a".repeat(25), " ".repeat(40))
        );
    }

    #[test]
    fn default_on_first_line_of_file_fails_on_reparse() {
        let vars = test_vars();
        let ctx = LexCtx { vars: &vars, file: "d.cfg", line: 1, section: "" };
        let mut buf = OutBuf::new();
        let l = split_line_tracked(b".notice \"${X-abc}\"", &ctx, &mut buf);
        assert_eq!(
            l.errors[0].message(),
            "unmatched brace in environment variable name at position 11:\n  .notice \"${X-abc\n            ^"
        );
        let l = split_line_tracked(b".notice \"${X-abc}\"", &ctx, &mut buf);
        assert_eq!(l.words[1].text, "abc");
        // A comment first line grows the buffer too.
        let mut buf = OutBuf::new();
        assert!(split_line_tracked(b"# c", &ctx, &mut buf).errors.is_empty());
        assert!(split_line_tracked(b".n \"${X-abc}\"", &ctx, &mut buf).errors.is_empty());
        // A line longer than the buffer is parsed twice again.
        let long = format!(".n \"${{X-abc}}\" {}", "z".repeat(1100));
        assert_eq!(split_line_tracked(long.as_bytes(), &ctx, &mut buf).errors.len(), 1);
    }

    #[test]
    fn scope_lines_are_not_words() {
        let l = lex("  [ab]  # c");
        assert_eq!((l.scope.as_deref(), l.words.len()), (Some("ab"), 0));
        let e = &lex("[ ]").errors[0];
        assert_eq!(e.message(), "character ' ' is not permitted in a scope name.");
        assert!(e.aborts());
        assert_eq!(e.frame(), Frame::Parsing);
        assert_eq!(lex("[a/b]").errors[0].message(), "character '/' is not permitted in a scope name.");
        assert_eq!(lex("[ab] x").errors[0].message(), "character 'x' is not permitted after scope declaration.");
        assert_eq!(lex("[]").errors[0].message(), "empty scope name is forbidden.");
        assert_eq!(lex("[ab").errors[0].message(), "empty scope name is forbidden.");
    }

    #[test]
    fn word_spans_point_at_raw_tokens() {
        let l = lex("  bind \"a b\"\\ c   x#y");
        let spans: Vec<(u32, u32)> = l.words.iter().map(|w| (w.col, w.len)).collect();
        assert_eq!(spans, [(3, 4), (8, 8), (19, 1)]);
    }
}
