//! `.if/.elif/.else/.endif` blocks and their condition language; `.diag/.notice/.warning/.alert`.
//!
//! Behaviour follows HAProxy's line reader and condition parser (verified against 2.6.12 with
//! `haproxy -c` and `haproxy -cc`; 3.x facts from the 3.4 sources and doc). Every message this
//! module produces is the text HAProxy prints after `parsing [file:line]: ` (the
//! `Frame::ParsingTight` frame of `crate::check`).
use std::collections::HashMap;

use nom::bytes::complete::{tag, take_till};
use nom::character::complete::{char, space0};
use nom::error::{ErrorKind, ParseError};
use nom::multi::many0_count;
use nom::sequence::terminated;
use nom::IResult;

use crate::check::Severity;
use crate::version::Version;

/// Where the lexer's variables come from (environment plus `setenv` lines seen so far).
pub trait VarLookup {
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl VarLookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

pub struct CondCtx<'a> {
    /// The HAProxy branch whose language we speak.
    pub version: Version,
    pub vars: &'a dyn VarLookup,
}

// ---------------------------------------------------------------------------------------------
// The build we pretend to be. Conditions test the *binary*, not the config, so we need one.

/// `haproxy -vv` "Feature list" of a typical Linux build (Debian's 2.6.12), used for every
/// target version.
const FEATURES: &str = "-51DEGREES +ACCEPT4 +BACKTRACE -CLOSEFROM +CPU_AFFINITY +CRYPT_H \
-DEVICEATLAS +DL -ENGINE +EPOLL -EVPORTS +GETADDRINFO -KQUEUE +LIBCRYPT +LINUX_SPLICE \
+LINUX_TPROXY +LUA -MEMORY_PROFILING +NETFILTER +NS -OBSOLETE_LINKER +OPENSSL +OT -PCRE +PCRE2 \
+PCRE2_JIT -PCRE_JIT +POLL +PRCTL -PROCCTL +PROMEX -QUIC +RT +SLZ -STATIC_PCRE -STATIC_PCRE2 \
+SYSTEMD +TFO +THREAD +THREAD_DUMP +TPROXY -WURFL -ZLIB";

/// OPENSSL_VERSION_NUMBER of that build (OpenSSL 3.0 headers, status nibble 0). Measured on
/// 2.6.12: `openssl_version_atleast(3.0.0u)` is true and `(3.0.0v)` false.
const OPENSSL_VERSION_NUMBER: i64 = 0x3000_0160;

/// The SSL library name that build reports (`ssllib_name_startswith` tests its prefix).
const SSL_LIB_NAME: &str = "OpenSSL 3.0.19 27 Jan 2026";

/// `enabled()` options that are on by default on such a Linux build. HAProxy reads the live
/// settings, so `nosplice`, `noepoll`, `ssl-server-verify none` or `-dS` would change them;
/// we do not track those.
const ENABLED_BY_DEFAULT: &[&str] = &["POLL", "EPOLL", "SPLICE", "GETADDRINFO", "REUSEPORT", "FAST-FORWARD"];

/// HAProxy's MAX_CFG_RECURSION: the parser's depth budget, spent on every `&&`, `||` and `(`.
const MAX_RECURSION: i32 = 1024;
/// HAProxy's MAXNESTEDCONDS: the 100th nested `.if` is refused.
const MAX_NESTED: usize = 100;
/// A predicate argument is decoded into a bufsize (16384) buffer, NUL included.
const MAX_ARG_LEN: usize = 16383;

// ---------------------------------------------------------------------------------------------
// Predicates

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PredKind {
    Defined,
    Feature,
    Streq,
    Strneq,
    Strstr,
    VersionAtleast,
    VersionBefore,
    OsslVersionAtleast,
    OsslVersionBefore,
    SsllibNameStartswith,
    AwslcApiAtleast,
    AwslcApiBefore,
    Enabled,
}

#[derive(Debug)]
struct Predicate {
    name: &'static str,
    /// First branch whose parser knows the name (it is "unparsable" before).
    since: Version,
    /// Number of string arguments, all mandatory.
    nargs: usize,
    kind: PredKind,
}

const fn pred(name: &'static str, since: (u16, u16), nargs: usize, kind: PredKind) -> Predicate {
    Predicate { name, since: Version::new(since.0, since.1), nargs, kind }
}

/// Table order does not matter: names are matched whole. `since` is when the parser
/// accepted the name (openssl_* and ssllib_* were in 2.6's parser though documented in 3.3).
/// `fips_mode()` only exists after 3.4, so it is not listed.
static PREDICATES: &[Predicate] = &[
    pred("defined", (2, 4), 1, PredKind::Defined),
    pred("feature", (2, 4), 1, PredKind::Feature),
    pred("streq", (2, 4), 2, PredKind::Streq),
    pred("strneq", (2, 4), 2, PredKind::Strneq),
    pred("strstr", (2, 8), 2, PredKind::Strstr),
    pred("version_atleast", (2, 4), 1, PredKind::VersionAtleast),
    pred("version_before", (2, 4), 1, PredKind::VersionBefore),
    pred("openssl_version_atleast", (2, 6), 1, PredKind::OsslVersionAtleast),
    pred("openssl_version_before", (2, 6), 1, PredKind::OsslVersionBefore),
    pred("ssllib_name_startswith", (2, 6), 1, PredKind::SsllibNameStartswith),
    pred("awslc_api_atleast", (3, 3), 1, PredKind::AwslcApiAtleast),
    pred("awslc_api_before", (3, 3), 1, PredKind::AwslcApiBefore),
    pred("enabled", (2, 8), 1, PredKind::Enabled),
];

// ---------------------------------------------------------------------------------------------
// Errors

/// A condition that HAProxy refuses. Positions are byte offsets in the joined expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CondError {
    msg: String,
    expr: String,
    /// 0-based byte offset of the first bad character (HAProxy's `errptr`).
    offset: usize,
    /// Raised while evaluating (openssl/awslc arguments), not while parsing.
    at_eval: bool,
}

impl CondError {
    /// The bare message, as `-cc` prints it after `Failed to evaluate condition: `.
    pub fn message(&self) -> String {
        self.msg.clone()
    }

    /// 1-based byte position HAProxy reports.
    pub fn position(&self) -> usize {
        self.offset + 1
    }

    /// The whole text after `parsing [file:line]: ` for a failing `.if` / `.elif`
    /// (`directive` is ".if" or ".elif"): the message, then the expression and a caret line.
    /// Long expressions are cut to 80 columns around the caret, as HAProxy does.
    pub fn render(&self, directive: &str) -> String {
        let width = 80usize.saturating_sub(directive.len() + 1);
        let (line, newpos) = sanitize_for_printing(self.expr.as_bytes(), self.offset, width);
        format!(
            "{} in '{}' at position {}:\n  {} {}\n  {:>w$}",
            self.msg,
            directive,
            self.position(),
            directive,
            line,
            "^",
            w = newpos + directive.len() + 2
        )
    }

    /// Whether HAProxy `version` crashes (SIGSEGV) on this `.if` instead of reporting it:
    /// before 3.4 an evaluation error carried no message and no position. With `-cc` those
    /// versions print nothing and exit 2.
    pub fn crashes_haproxy(&self, version: Version) -> bool {
        self.at_eval && version < Version::new(3, 4)
    }
}

/// HAProxy's sanitize_for_printing(): keep about `width` bytes around `pos`, with "..." where
/// cut; blanks become ' ' and other unprintable bytes '?'. Returns the line and the new `pos`.
fn sanitize_for_printing(line: &[u8], pos: usize, width: usize) -> (String, usize) {
    let mut out = String::new();
    let (start, limit, shift) = if pos >= width {
        let shift = pos - width / 2;
        out.push_str("...");
        (shift + 3, width.saturating_sub(3), shift)
    } else {
        (0, width, 0)
    };
    for &b in line.iter().skip(start) {
        if out.len() >= limit {
            break;
        }
        out.push(if is_c_space(b) {
            ' '
        } else if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '?'
        });
    }
    if pos >= width {
        out.push_str("...");
    }
    (out, pos - shift)
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

#[derive(Debug)]
enum TermKind {
    Const(bool),
    Pred(&'static Predicate, Vec<String>),
    Paren(Expr),
}

#[derive(Debug)]
struct Term {
    neg: bool,
    kind: TermKind,
}

/// `a && b || c`: a list of OR-ed lists of AND-ed terms, evaluated left to right.
#[derive(Debug)]
struct Expr(Vec<Vec<Term>>);

// ---------------------------------------------------------------------------------------------
// Parser (nom). HAProxy's parser functions answer "parsed", "nothing here" or "error"; nom's
// Ok / Err::Error / Err::Failure carry the same three answers.

#[derive(Debug)]
enum PErr<'a> {
    /// "Nothing to parse here"; the slice is where the caller's cursor was left.
    Desync(&'a str),
    /// A reported error: message and the first bad character.
    Fatal { msg: String, at: &'a str },
    /// A nom combinator did not match (only used internally).
    Nom(&'a str),
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        PErr::Nom(input)
    }
    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, PErr<'a>>;

fn fatal<T>(msg: String, at: &str) -> PResult<'_, T> {
    Err(nom::Err::Failure(PErr::Fatal { msg, at }))
}

fn desync<T>(at: &str) -> PResult<'_, T> {
    Err(nom::Err::Error(PErr::Desync(at)))
}

/// Spaces and tabs only, as between tokens in HAProxy.
fn blanks(i: &str) -> &str {
    match space0::<&str, PErr>(i) {
        Ok((rest, _)) => rest,
        Err(_) => i,
    }
}

struct Parser {
    version: Version,
}

impl Parser {
    /// expr := and [ '||' expr ]
    fn expr<'a>(&self, i: &'a str, depth: i32) -> PResult<'a, Expr> {
        if i.is_empty() {
            return desync(i);
        }
        if depth <= 0 {
            return fatal(format!("unparsable conditional expression '{i}'"), i);
        }
        let (rest, first) = match self.and(i, depth - 1) {
            Ok(v) => v,
            Err(nom::Err::Error(PErr::Desync(at))) => {
                return fatal(format!("unparsable conditional expression '{at}'"), at)
            }
            Err(e) => return Err(e),
        };
        let rest = blanks(rest);
        let Ok((after, _)) = tag::<&str, &str, PErr>("||")(rest) else {
            return Ok((rest, Expr(vec![first])));
        };
        match self.expr(blanks(after), depth - 1) {
            Ok((end, Expr(mut more))) => {
                more.insert(0, first);
                Ok((end, Expr(more)))
            }
            // Nothing after "||": the cursor stays on the operator.
            Err(nom::Err::Error(_)) => desync(rest),
            Err(e) => Err(e),
        }
    }

    /// and := term [ '&&' and ]
    fn and<'a>(&self, i: &'a str, depth: i32) -> PResult<'a, Vec<Term>> {
        if i.is_empty() {
            return desync(i);
        }
        if depth <= 0 {
            return fatal(format!("unparsable conditional sub-expression '{i}'"), i);
        }
        let (rest, first) = match self.term(i, depth - 1) {
            Ok(v) => v,
            Err(nom::Err::Error(_)) => return fatal(format!("unparsable conditional sub-expression '{i}'"), i),
            Err(e) => return Err(e),
        };
        let rest = blanks(rest);
        let Ok((after, _)) = tag::<&str, &str, PErr>("&&")(rest) else {
            return Ok((rest, vec![first]));
        };
        match self.and(blanks(after), depth - 1) {
            Ok((end, mut more)) => {
                more.insert(0, first);
                Ok((end, more))
            }
            Err(nom::Err::Error(_)) => desync(rest),
            Err(e) => Err(e),
        }
    }

    /// term := '!'* ( integer | '(' expr ')' | predicate [ '(' args ')' ] )
    fn term<'a>(&self, text: &'a str, depth: i32) -> PResult<'a, Term> {
        let unparsable = |at: &'a str| fatal(format!("unparsable conditional expression '{text}'"), at);
        let i = blanks(text);
        if i.is_empty() {
            return desync(text);
        }
        if depth <= 0 {
            return unparsable(text);
        }
        let (i, bangs) = many0_count(terminated(char('!'), space0))(i)?;
        let neg = bangs % 2 == 1;

        if let Some((rest, value)) = c_strtol_base0(i) {
            let kind = TermKind::Const(value);
            return Ok((rest, Term { neg, kind }));
        }

        if let Ok((inner, _)) = char::<&str, PErr>('(')(i) {
            let (rest, expr) = match self.expr(blanks(inner), depth - 1) {
                Ok(v) => v,
                Err(nom::Err::Error(_)) => return unparsable(text),
                Err(e) => return Err(e),
            };
            let rest = blanks(rest);
            return match char::<&str, PErr>(')')(rest) {
                Ok((after, _)) => {
                    let kind = TermKind::Paren(expr);
                    Ok((blanks(after), Term { neg, kind }))
                }
                Err(_) => fatal(format!("expected ')' after conditional expression '{text}'"), text),
            };
        }

        let (args_text, name) = take_till::<_, &str, PErr>(|c| c == ' ' || c == '(')(i)?;
        let Some(p) = PREDICATES.iter().find(|p| p.name == name && p.since <= self.version) else {
            return unparsable(text);
        };
        match make_arg_list(args_text, p.nargs) {
            Ok((args, used)) => {
                let rest = args_text.get(used..).unwrap_or("");
                let kind = TermKind::Pred(p, args);
                Ok((rest, Term { neg, kind }))
            }
            Err(ArgError { msg, arg, at }) => fatal(
                format!("{msg} in argument {arg} of predicate '{}' used in conditional expression", p.name),
                args_text.get(at..).unwrap_or(""),
            ),
        }
    }
}

/// C's strtol(s, &end, 0) as used on a term: leading blanks, a sign, then hex (`0x`), octal
/// (leading `0`) or decimal digits. None when no digit was read. The value only matters as
/// zero / non-zero (an overflow saturates, which is non-zero too).
fn c_strtol_base0(s: &str) -> Option<(&str, bool)> {
    let b = s.as_bytes();
    let mut j = b.iter().take_while(|&&c| is_c_space(c)).count();
    if matches!(b.get(j), Some(b'+' | b'-')) {
        j += 1;
    }
    let is_hex_prefix = b.get(j) == Some(&b'0')
        && matches!(b.get(j + 1), Some(b'x' | b'X'))
        && b.get(j + 2).is_some_and(u8::is_ascii_hexdigit);
    let radix = if is_hex_prefix {
        j += 2;
        16
    } else if b.get(j) == Some(&b'0') {
        8
    } else {
        10
    };
    let digits = b.get(j..).unwrap_or(&[]).iter().take_while(|&&c| (c as char).is_digit(radix)).count();
    if digits == 0 {
        return None;
    }
    let nonzero = b.get(j..j + digits).unwrap_or(&[]).iter().any(|&c| c != b'0');
    Some((s.get(j + digits..).unwrap_or(""), nonzero))
}

struct ArgError {
    msg: String,
    /// The argument number HAProxy reports (it may be 0).
    arg: usize,
    /// Byte offset of the bad character in the argument text.
    at: usize,
}

/// HAProxy's make_arg_list() for `n` mandatory string arguments. `s` starts right after the
/// predicate name. Returns the arguments and the bytes consumed (closing paren included).
fn make_arg_list(s: &str, n: usize) -> Result<(Vec<String>, usize), ArgError> {
    let b = s.as_bytes();
    // Without '(' HAProxy still builds one empty argument.
    let empty = b.first() != Some(&b'(');
    let mut i = usize::from(!empty);
    let mut args: Vec<String> = Vec::new();
    let mut pos = 0;
    while pos < n {
        let mut out: Vec<u8> = Vec::new();
        let (mut sq, mut dq) = (false, false);
        while !empty && out.len() < MAX_ARG_LEN {
            let Some(&c) = b.get(i) else { break };
            if c == b'"' && !sq {
                dq = !dq;
                i += 1;
            } else if c == b'\'' && !dq {
                sq = !sq;
                i += 1;
            } else if c == b'\\' && !sq {
                let Some(&next) = b.get(i + 1) else {
                    return Err(ArgError {
                        msg: format!(
                            "failed to parse '{}' after '{}' as type 'string' at position {}",
                            s.get(i..).unwrap_or(""),
                            String::from_utf8_lossy(&out),
                            pos + 1
                        ),
                        arg: pos,
                        at: i,
                    });
                };
                match next {
                    b'\\' | b' ' | b'"' | b'\'' => {
                        out.push(next);
                        i += 2;
                    }
                    b'r' => {
                        out.push(b'\r');
                        i += 2;
                    }
                    b'n' => {
                        out.push(b'\n');
                        i += 2;
                    }
                    b't' => {
                        out.push(b'\t');
                        i += 2;
                    }
                    _ => {
                        out.push(b'\\');
                        i += 1;
                    }
                }
            } else if !sq && !dq && (c == b',' || c == b')') {
                break;
            } else {
                out.push(c);
                i += 1;
            }
        }
        if !empty && !matches!(b.get(i), None | Some(b',' | b')')) {
            return Err(ArgError {
                msg: format!("too small buffer size to store decoded argument {}, increase bufsize ?", pos + 1),
                arg: pos,
                at: i,
            });
        }
        args.push(String::from_utf8_lossy(&out).into_owned());
        pos += 1;
        if empty || matches!(b.get(i), None | Some(b')')) || pos >= n {
            break;
        }
        i += 1; // the comma
    }
    if pos < n {
        return Err(ArgError {
            msg: format!("missing arguments (got {pos}/{n}), type 'string' expected"),
            arg: pos,
            at: i,
        });
    }
    if !empty {
        if b.get(i) == Some(&b')') {
            i += 1;
        } else {
            let word = s.get(i..).unwrap_or("");
            let msg =
                if word.is_empty() { "expected ')'".to_string() } else { format!("expected ')' before '{word}'") };
            // HAProxy counts one argument too many here and corrects for it.
            let arg = if pos > 1 { pos - 1 } else { pos };
            return Err(ArgError { msg, arg, at: i });
        }
    }
    Ok((args, i))
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Raised by predicates whose argument is only checked at evaluation time.
struct EvalError(String);

fn eval_expr(e: &Expr, ctx: &CondCtx) -> Result<bool, EvalError> {
    for ands in &e.0 {
        let mut all = true;
        for t in ands {
            if !eval_term(t, ctx)? {
                all = false;
                break;
            }
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

fn eval_term(t: &Term, ctx: &CondCtx) -> Result<bool, EvalError> {
    let v = match &t.kind {
        TermKind::Const(v) => *v,
        TermKind::Paren(e) => eval_expr(e, ctx)?,
        TermKind::Pred(p, args) => eval_pred(p, args, ctx)?,
    };
    Ok(v != t.neg)
}

fn eval_pred(p: &Predicate, args: &[String], ctx: &CondCtx) -> Result<bool, EvalError> {
    let a = args.first().map(String::as_str).unwrap_or("");
    let b = args.get(1).map(String::as_str).unwrap_or("");
    let invalid = || EvalError(format!("invalid argument to conditional expression predicate '{}': '{a}'", p.name));
    Ok(match p.kind {
        PredKind::Defined => ctx.vars.lookup(a).is_some(),
        PredKind::Feature => has_feature(a, ctx.version),
        PredKind::Streq => a == b,
        PredKind::Strneq => a != b,
        PredKind::Strstr => a.contains(b),
        PredKind::VersionAtleast => compare_target_version(a, ctx.version) <= 0,
        PredKind::VersionBefore => compare_target_version(a, ctx.version) > 0,
        PredKind::OsslVersionAtleast => {
            let v = openssl_version_parser(a).ok_or_else(invalid)?;
            v <= OPENSSL_VERSION_NUMBER
        }
        PredKind::OsslVersionBefore => {
            let v = openssl_version_parser(a).ok_or_else(invalid)?;
            v > OPENSSL_VERSION_NUMBER
        }
        PredKind::SsllibNameStartswith => SSL_LIB_NAME.starts_with(a),
        // Our build is not AWS-LC: HAProxy then rejects any argument.
        PredKind::AwslcApiAtleast | PredKind::AwslcApiBefore => return Err(invalid()),
        PredKind::Enabled => ENABLED_BY_DEFAULT.contains(&a),
    })
}

/// `feature(name)`: `name` appears whole in the feature list, right after a '+'.
fn has_feature(name: &str, version: Version) -> bool {
    if name.is_empty() {
        // Before the 3.4 fix HAProxy read past the list's end here; 2.6.12 answers true.
        return version < Version::new(3, 4);
    }
    let list = FEATURES.as_bytes();
    let mut from = 0;
    while let Some(found) = FEATURES.get(from..).and_then(|rest| rest.find(name)) {
        let p = from + found;
        let after = list.get(p + name.len()).copied();
        if p > 0 && matches!(after, None | Some(b' ')) {
            match list.get(p - 1) {
                Some(b'+') => return true,
                Some(b'-') => return false,
                _ => {}
            }
        }
        from = p + 1;
    }
    false
}

/// C's strtol(s + from, &end, 10) truncated to unsigned int: (value, end offset).
fn c_strtoul10(b: &[u8], from: usize) -> (u32, usize) {
    let mut j = from + b.get(from..).unwrap_or(&[]).iter().take_while(|&&c| is_c_space(c)).count();
    let neg = match b.get(j) {
        Some(b'-') => {
            j += 1;
            true
        }
        Some(b'+') => {
            j += 1;
            false
        }
        _ => false,
    };
    let start = j;
    let mut v: i64 = 0;
    while let Some(d) = b.get(j).filter(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        j += 1;
    }
    if j == start {
        return (0, from);
    }
    let v = if neg { v.saturating_neg() } else { v };
    // (unsigned int)(long): keep the low 32 bits.
    ((v & 0xffff_ffff) as u32, j)
}

/// HAProxy's split_version(): "a.b.c.d-tagN-commit" into 7 numbers; None when malformed.
fn split_version(v: &str) -> Option<[u32; 7]> {
    let b = v.as_bytes();
    let mut val = [0u32, 0, 0, 0, 3, 0, 0];
    if b.is_empty() {
        return None;
    }
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    let mut p = 0;
    let mut tag = false;
    for (idx, slot) in val.iter_mut().take(4).enumerate() {
        let (n, e) = c_strtoul10(b, p);
        *slot = n;
        p = e + 1;
        match at(e) {
            0 => return Some(val),
            b'-' => {
                tag = true;
                break;
            }
            b'.' if idx < 3 => {}
            _ => return None,
        }
    }
    if !tag {
        return None;
    }
    let rest = b.get(p..).unwrap_or(&[]);
    let tag_len = if at(p).is_ascii_digit() {
        None
    } else if rest.starts_with(b"dev") {
        val[4] = 1;
        Some(3)
    } else if rest.starts_with(b"rc") {
        val[4] = 2;
        Some(2)
    } else if rest.starts_with(b"pre") {
        val[4] = 2;
        Some(3)
    } else {
        None
    };
    if let Some(len) = tag_len {
        let (n, e) = c_strtoul10(b, p + len);
        val[5] = n;
        p = e + 1;
        match at(e) {
            0 => return Some(val),
            b'-' => {}
            _ => return None,
        }
    }
    // Commit number: after the last '-', or what is left.
    let rest = b.get(p..).unwrap_or(&[]);
    let start = match rest.iter().rposition(|&c| c == b'-') {
        Some(dash) => {
            if p + dash + 1 >= b.len() {
                return None;
            }
            p + dash + 1
        }
        None => p,
    };
    let (n, e) = c_strtoul10(b, start);
    val[6] = if e >= b.len() { n } else { 0 };
    Some(val)
}

/// Compares `v` with the target branch as HAProxy's compare_current_version() does: -1 when
/// `v` is older, 0 equal, 1 newer, -3 when `v` does not parse (so `version_atleast(junk)` is
/// true, as in HAProxy). The target X.Y counts as its newest patch release, X.Y.∞: a config
/// written for "2.6" may run on any 2.6.z, and the newest is what is supported.
fn compare_target_version(v: &str, target: Version) -> i32 {
    let Some(m) = split_version(v) else { return -3 };
    let cur = [u32::from(target.major), u32::from(target.minor), u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX];
    match m.cmp(&cur) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }
}

/// HAProxy's openssl_version_parser(): "M.m.f[letters|-betaN]" to MNNFFPPS; None if invalid.
/// The result is then compared as a C int, as HAProxy does.
fn openssl_version_parser(v: &str) -> Option<i64> {
    let b = v.as_bytes();
    if b.is_empty() {
        return None;
    }
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    let (major, e) = c_strtoul10(b, 0);
    if at(e) != b'.' || major > 0xf {
        return None;
    }
    let (minor, e) = c_strtoul10(b, e + 1);
    if at(e) != b'.' || minor > 0xff {
        return None;
    }
    let (fix, e) = c_strtoul10(b, e + 1);
    if fix > 0xff {
        return None;
    }
    let (mut patch, mut status) = (0u32, 0u32);
    match at(e) {
        0 => status = 0xf,
        b'-' => {
            if b.get(e + 1..).is_some_and(|r| r.starts_with(b"beta")) {
                status = c_strtoul10(b, e + 5).0;
                if status > 14 {
                    return None;
                }
            }
        }
        _ => {
            patch = 1;
            for &c in b.get(e..).unwrap_or(&[]) {
                // (char & ~0x20) - 'A' with a signed char
                let c = i32::from(c as i8) & !0x20;
                patch = patch.wrapping_add((c - 65) as u32);
            }
            status = 0xf;
        }
    }
    let num =
        ((major & 0xf) << 28) | ((minor & 0xff) << 20) | ((fix & 0xff) << 12) | ((patch & 0xff) << 4) | (status & 0xf);
    Some(i64::from(num as i32))
}

// ---------------------------------------------------------------------------------------------
// Entry point

/// Evaluates the condition of `.if`/`.elif` (or `-cc`). `words` are the words after the
/// directive, already unquoted and expanded by the lexer; HAProxy joins them with single
/// spaces (a NUL inside a word also becomes a space) and parses that one string. An empty
/// string is false.
///
/// `-cc EXPR` (HAProxy 2.6.12, verified): EXPR is tokenized like a config line except that
/// `#` is not a comment, then evaluated here. True: exit 0, nothing printed. False: exit 1,
/// nothing printed. Error: exit 2 after `[NOTICE] ... haproxy version is <v>`,
/// `[NOTICE] ... path to executable is <path>` and
/// `[ALERT]    (pid) : config : Failed to evaluate condition: <CondError::message()>`;
/// but when `CondError::crashes_haproxy(version)` is true, versions before 3.4 print no alert
/// (exit 2 all the same). Tokenizer errors exit 2 with `Syntax Error in condition: Unmatched
/// quote.`, `Syntax Error in condition: Truncated or invalid hexadecimal sequence.` or
/// `Error in condition: Too many words.`
pub fn eval(words: &[String], ctx: &CondCtx) -> Result<bool, CondError> {
    let expr = words.join(" ").replace('\0', " ");
    if expr.is_empty() {
        return Ok(false);
    }
    let offset = |rest: &str| expr.len() - rest.len();
    let error =
        |msg: String, at: &str, at_eval: bool| CondError { msg, expr: expr.clone(), offset: offset(at), at_eval };
    let parser = Parser { version: ctx.version };
    let (rest, tree) = match parser.expr(&expr, MAX_RECURSION) {
        Ok(v) => v,
        Err(nom::Err::Failure(PErr::Fatal { msg, at })) => return Err(error(msg, at, false)),
        Err(nom::Err::Error(PErr::Desync(at))) => {
            let msg = format!("unparsable conditional expression '{expr}'");
            return Err(error(msg, at, false));
        }
        Err(nom::Err::Error(PErr::Nom(at)) | nom::Err::Failure(PErr::Nom(at))) => {
            let msg = format!("unparsable conditional expression '{at}'");
            return Err(error(msg, at, false));
        }
        Err(_) => {
            let msg = format!("unparsable conditional expression '{expr}'");
            return Err(error(msg, &expr, false));
        }
    };
    let rest = blanks(rest);
    if let Some(c) = rest.chars().next() {
        let msg = format!("unexpected character '{c}' at the end of conditional expression '{expr}'");
        return Err(error(msg, rest, false));
    }
    eval_expr(&tree, ctx).map_err(|EvalError(msg)| error(msg, rest, true))
}

// ---------------------------------------------------------------------------------------------
// Nesting state

/// The dot-directives HAProxy knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    If,
    Elif,
    Else,
    Endif,
    Diag,
    Notice,
    Warning,
    Alert,
    Unknown,
}

impl Directive {
    pub fn from_word(word: &str) -> Directive {
        match word {
            ".if" => Directive::If,
            ".elif" => Directive::Elif,
            ".else" => Directive::Else,
            ".endif" => Directive::Endif,
            ".diag" => Directive::Diag,
            ".notice" => Directive::Notice,
            ".warning" => Directive::Warning,
            ".alert" => Directive::Alert,
            _ => Directive::Unknown,
        }
    }
}

/// What the caller prints for a directive that went well.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Nothing,
    /// A `.diag/.notice/.warning` message, e.g. (Notice, "'text'.") for `.notice "text"`.
    /// Diag is shown only with `-dD`; a Warning counts as one (fatal under `zero-warning`).
    Message(Severity, String),
}

/// How far a fatal directive error stops HAProxy's reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Go on with the next line (the config is still refused).
    Line,
    /// Stop reading this file; its end-of-file checks (`finish`) still run at this line, and
    /// the next files are read.
    File,
    /// As `File`, but no further file is read afterwards (HAProxy's ERR_ABORT).
    FileThenAbort,
    /// Stop everything now: no end-of-file check, no further file, and no
    /// "Fatal errors found in configuration." summary.
    Abort,
}

/// A fatal directive error: an `[ALERT]` with `message` after `parsing [file:line]: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectiveError {
    pub message: String,
    pub stop: Stop,
    /// HAProxy of the target version crashes on this line rather than printing `message`.
    pub crashes_haproxy: bool,
}

impl DirectiveError {
    fn new(message: String, stop: Stop) -> DirectiveError {
        DirectiveError { message, stop, crashes_haproxy: false }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Branch {
    /// `.if` with a true condition.
    IfTake,
    /// `.if` with a false condition.
    IfDrop,
    /// `.if` inside a dead block: not evaluated.
    IfSkip,
    ElifTake,
    ElifDrop,
    /// `.elif` after a taken branch or inside a dead block: not evaluated.
    ElifSkip,
    ElseTake,
    ElseDrop,
}

impl Branch {
    fn live(self) -> bool {
        matches!(self, Branch::IfTake | Branch::ElifTake | Branch::ElseTake)
    }
    /// A branch was already taken (or the whole block is dead), so later ones are skipped.
    fn done(self) -> bool {
        matches!(self, Branch::IfTake | Branch::IfSkip | Branch::ElifTake | Branch::ElifSkip)
    }
    fn is_else(self) -> bool {
        matches!(self, Branch::ElseTake | Branch::ElseDrop)
    }
}

/// Per-file nesting state.
#[derive(Clone, Debug, Default)]
pub struct CondStack {
    /// One entry per open `.if`: its current branch and the line of the `.if`.
    levels: Vec<(Branch, u32)>,
}

impl CondStack {
    pub fn new() -> CondStack {
        CondStack::default()
    }

    /// True when lines at this point are live (all enclosing branches taken).
    pub fn active(&self) -> bool {
        self.levels.last().is_none_or(|(b, _)| b.live())
    }

    /// Line of the innermost open `.if`, if any (for hints).
    pub fn open_if_line(&self) -> Option<u32> {
        self.levels.last().map(|&(_, line)| line)
    }

    /// Handles one line whose first word (`directive`) starts with '.'; `args` are the words
    /// after it and `line` its line number (kept to point at an unclosed `.if`). Call it for
    /// every such line, live or not: dead blocks still track nesting. Other lines are to be
    /// skipped when `active()` is false.
    ///
    /// Ok(Nothing) or Ok(Message(..)) for `.diag/.notice/.warning`. Every Err is a fatal
    /// `[ALERT]`, including a live `.alert "m"` (message "'m'.", Stop::Abort) and an unknown
    /// directive; `Stop` says where HAProxy stops reading.
    pub fn handle(
        &mut self,
        line: u32,
        directive: &str,
        args: &[String],
        ctx: &CondCtx,
    ) -> Result<Outcome, DirectiveError> {
        // HAProxy tests `*args[1]`: an empty first word counts as no argument.
        let has_arg = |k: usize| args.get(k).is_some_and(|a| !a.is_empty());
        let kind = Directive::from_word(directive);
        match kind {
            Directive::If => {
                if self.levels.len() + 1 >= MAX_NESTED {
                    let msg = format!("too many nested '.if', max is {MAX_NESTED}.");
                    return Err(DirectiveError::new(msg, Stop::Abort));
                }
                if !self.active() {
                    self.levels.push((Branch::IfSkip, line));
                    return Ok(Outcome::Nothing);
                }
                let taken = Self::condition(".if", args, ctx)?;
                let branch = if taken { Branch::IfTake } else { Branch::IfDrop };
                self.levels.push((branch, line));
                Ok(Outcome::Nothing)
            }
            Directive::Elif => {
                let Some(&(top, _)) = self.levels.last() else {
                    let msg = "lone '.elif' with no matching '.if'.".to_string();
                    return Err(DirectiveError::new(msg, Stop::Abort));
                };
                if top.is_else() {
                    let msg = "'.elif' after '.else' is not permitted.".to_string();
                    return Err(DirectiveError::new(msg, Stop::Abort));
                }
                let branch = if top.done() {
                    Branch::ElifSkip
                } else if Self::condition(".elif", args, ctx)? {
                    Branch::ElifTake
                } else {
                    Branch::ElifDrop
                };
                self.set_top(branch);
                Ok(Outcome::Nothing)
            }
            Directive::Else | Directive::Endif => {
                if has_arg(0) {
                    let arg = args.first().map(String::as_str).unwrap_or("");
                    let msg = format!("Unexpected argument '{arg}' for '{directive}'.");
                    return Err(DirectiveError::new(msg, Stop::FileThenAbort));
                }
                let lone = |stop| {
                    let msg = format!("lone '{directive}' with no matching '.if'.");
                    Err(DirectiveError::new(msg, stop))
                };
                if kind == Directive::Endif {
                    if self.levels.pop().is_none() {
                        return lone(Stop::FileThenAbort);
                    }
                    return Ok(Outcome::Nothing);
                }
                let Some(&(top, _)) = self.levels.last() else {
                    return lone(Stop::Abort);
                };
                if top.is_else() {
                    let msg = "'.else' after '.else' is not permitted.".to_string();
                    return Err(DirectiveError::new(msg, Stop::Abort));
                }
                let branch = if top.done() { Branch::ElseDrop } else { Branch::ElseTake };
                self.set_top(branch);
                Ok(Outcome::Nothing)
            }
            // Other directives in dead blocks are ignored, even unknown ones.
            _ if !self.active() => Ok(Outcome::Nothing),
            Directive::Unknown => {
                let msg = format!("unknown directive '{directive}'.");
                Err(DirectiveError::new(msg, Stop::File))
            }
            Directive::Diag | Directive::Notice | Directive::Warning | Directive::Alert => {
                if has_arg(1) {
                    let extra = args.get(1).map(String::as_str).unwrap_or("");
                    let msg = format!(
                        "Unexpected argument '{extra}' for '{directive}'. Use quotes if the message should contain spaces."
                    );
                    return Err(DirectiveError::new(msg, Stop::Line));
                }
                let text = format!("'{}'.", args.first().map(String::as_str).unwrap_or(""));
                let severity = match kind {
                    Directive::Diag => Severity::Diag,
                    Directive::Notice => Severity::Notice,
                    Directive::Warning => Severity::Warning,
                    _ => return Err(DirectiveError::new(text, Stop::Abort)),
                };
                Ok(Outcome::Message(severity, text))
            }
        }
    }

    /// At end of file (or where reading stopped, `last_line`): HAProxy's error for a block
    /// left open, reported at that line (not at the `.if`; see `open_if_line`). It is fatal
    /// and stops the load (ERR_ABORT).
    pub fn finish(&self, last_line: u32) -> Result<(), (u32, String)> {
        if self.levels.is_empty() {
            Ok(())
        } else {
            Err((last_line, "non-terminated '.if' block.".to_string()))
        }
    }

    fn set_top(&mut self, branch: Branch) {
        if let Some(top) = self.levels.last_mut() {
            top.0 = branch;
        }
    }

    fn condition(directive: &str, args: &[String], ctx: &CondCtx) -> Result<bool, DirectiveError> {
        eval(args, ctx).map_err(|e| DirectiveError {
            message: e.render(directive),
            stop: Stop::Abort,
            crashes_haproxy: e.crashes_haproxy(ctx.version),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v26() -> Version {
        Version::new(2, 6)
    }

    /// Test-only line splitter: blanks separate words, `"..."` groups, `#` starts a comment.
    /// (The real lexer lives in lexer.rs; conditions only need this much.)
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let (mut quoted, mut in_word) = (false, false);
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    in_word = true;
                }
                '#' if !quoted => break,
                ' ' | '\t' if !quoted => {
                    if in_word {
                        out.push(std::mem::take(&mut cur));
                    }
                    in_word = false;
                }
                _ => {
                    cur.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            out.push(cur);
        }
        out
    }

    /// Runs a config through the stack the way HAProxy's reader does and returns what it
    /// prints: "LEVEL line: text", plain lines shown as "live line: keyword".
    fn run_with(cfg: &str, version: Version, vars: &HashMap<String, String>) -> Vec<String> {
        let ctx = CondCtx { version, vars };
        let mut st = CondStack::new();
        let mut out = Vec::new();
        let mut last = 0;
        for (n, text) in cfg.lines().enumerate() {
            let line = n as u32 + 1;
            last = line;
            let w = words(text);
            let Some(first) = w.first() else { continue };
            if first.starts_with('.') {
                match st.handle(line, first, &w[1..], &ctx) {
                    Ok(Outcome::Nothing) => {}
                    Ok(Outcome::Message(sev, m)) => out.push(format!("{} {line}: {m}", sev.tag().trim_end())),
                    Err(e) => {
                        out.push(format!("[ALERT] {line}: {}", e.message));
                        match e.stop {
                            Stop::Line => continue,
                            Stop::File | Stop::FileThenAbort => break,
                            Stop::Abort => return out,
                        }
                    }
                }
            } else if st.active() {
                out.push(format!("live {line}: {first}"));
            }
        }
        if let Err((line, m)) = st.finish(last) {
            out.push(format!("[ALERT] {line}: {m}"));
        }
        out
    }

    fn run(cfg: &str) -> Vec<String> {
        run_with(cfg, v26(), &HashMap::new())
    }

    fn cond_in(expr: &str, version: Version) -> Result<bool, CondError> {
        let vars: HashMap<String, String> =
            [("SET".to_string(), "yes".to_string()), ("EMPTY".to_string(), String::new())].into_iter().collect();
        let ctx = CondCtx { version, vars: &vars };
        eval(&words(expr), &ctx)
    }

    fn cond(expr: &str) -> bool {
        match cond_in(expr, v26()) {
            Ok(v) => v,
            Err(e) => panic!("{expr}: {}", e.message()),
        }
    }

    fn err(expr: &str) -> String {
        match cond_in(expr, v26()) {
            Ok(v) => panic!("{expr} evaluated to {v}"),
            Err(e) => e.render(".if"),
        }
    }

    // --- constants and operators -----------------------------------------------------------

    #[test]
    fn empty_condition_is_false() {
        assert!(!cond(""));
        assert_eq!(run(".if\nmaxconn 1\n.endif\n"), Vec::<String>::new());
    }

    #[test]
    fn integers_follow_strtol_base_zero() {
        assert!(cond("1"));
        assert!(!cond("0"));
        assert!(cond("-1"));
        assert!(!cond("+0"));
        assert!(cond("0x10"));
        assert!(!cond("000"));
        assert!(cond("99999999999999999999999"));
    }

    #[test]
    fn negation_applies_to_terms_and_repeats() {
        assert!(cond("!0"));
        assert!(cond("! 0"));
        assert!(cond("!!1"));
        assert!(!cond("!1"));
        assert!(cond("!(0)"));
    }

    #[test]
    fn and_or_short_circuit_left_to_right() {
        assert!(cond("1 && 1"));
        assert!(!cond("1 && 0"));
        assert!(cond("0 || 1"));
        assert!(!cond("0 || 0"));
        assert!(cond("1&&1||0"));
        // The right side is not evaluated once the result is known, so its evaluation
        // error does not surface.
        assert!(cond("1 || openssl_version_atleast(junk)"));
        assert!(!cond("0 && openssl_version_atleast(junk)"));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert!(!cond("0 || 1 && 0"));
        assert!(cond("1 || 0 && 0"));
        assert!(cond("0 && 0 || 1"));
        assert!(!cond("(1 || 0) && 0"));
        assert!(cond("( 0 || 1 ) && ( 1 )"));
    }

    // --- predicates ------------------------------------------------------------------------

    #[test]
    fn defined_tests_presence_not_value() {
        assert!(cond("defined(SET)"));
        assert!(cond("defined(EMPTY)"));
        assert!(!cond("defined(UNSET)"));
        assert!(!cond("defined()"));
        assert!(!cond("defined"));
    }

    #[test]
    fn feature_matches_whole_plus_names_of_the_build() {
        assert!(cond("feature(OPENSSL)"));
        assert!(cond("feature(PCRE2_JIT)"));
        assert!(cond("feature(EPOLL)"));
        assert!(!cond("feature(QUIC)"));
        assert!(!cond("feature(JIT)"));
        assert!(!cond("feature(openssl)"));
        assert!(cond("feature(OPENSSL +OT)"));
    }

    #[test]
    fn feature_without_name_is_true_before_3_4_only() {
        assert!(cond("feature()"));
        assert_eq!(cond_in("feature()", Version::new(3, 4)), Ok(false));
    }

    #[test]
    fn streq_and_strneq_compare_whole_strings() {
        assert!(cond("streq(a,a)"));
        assert!(!cond("streq(a,b)"));
        assert!(cond("strneq(a,b)"));
        assert!(!cond("strneq(a,a)"));
        assert!(cond("streq(,)"));
    }

    #[test]
    fn words_are_joined_with_one_space_so_spaces_stay_in_arguments() {
        assert!(!cond("streq(a, a)"));
        assert!(!cond("streq(\"a  b\",a b)"));
        assert!(cond("streq(\"a  b\",\"a  b\")"));
    }

    #[test]
    fn argument_parser_handles_its_own_quotes_and_escapes() {
        let ctx_vars = HashMap::new();
        let ctx = CondCtx { version: v26(), vars: &ctx_vars };
        let w = |s: &str| vec![s.to_string()];
        // words as the lexer delivers them (quotes already removed at that level)
        assert_eq!(eval(&w("streq('a,b',\"a,b\")"), &ctx), Ok(true));
        assert_eq!(eval(&w(r"streq(a\ b,a b)"), &ctx), Ok(true));
        assert_eq!(eval(&w("streq(a\\tb,a\tb)"), &ctx), Ok(true));
        assert_eq!(eval(&w(r"streq(a\qb,a\qb)"), &ctx), Ok(true));
        assert_eq!(eval(&w("streq('x)','x)')"), &ctx), Ok(true));
        assert_eq!(eval(&w(r"streq(a,a\)"), &ctx), Ok(false));
        // a comma cannot be escaped: the backslash stays and the comma ends the argument
        assert_eq!(
            eval(&w(r"streq('a,b',a\,b)"), &ctx).map_err(|e| e.message()),
            Err("expected ')' before ',b)' in argument 1 of predicate 'streq' used in conditional expression"
                .to_string())
        );
    }

    #[test]
    fn version_atleast_treats_the_target_as_its_newest_patch_release() {
        assert!(cond("version_atleast(2.6)"));
        assert!(cond("version_atleast(2.6.12)"));
        assert!(cond("version_atleast(2.6.999)"));
        assert!(cond("version_atleast(2.4-dev19)"));
        assert!(cond("version_atleast(2.6-dev1)"));
        assert!(!cond("version_atleast(2.7)"));
        assert!(!cond("version_atleast(3.0)"));
        assert_eq!(cond_in("version_atleast(3.0)", Version::new(3, 4)), Ok(true));
        // unparsable versions make compare fail with -3, which reads as "at least"
        assert!(cond("version_atleast(abc)"));
        assert!(cond("version_atleast()"));
    }

    #[test]
    fn version_before_is_strict() {
        assert!(cond("version_before(2.7)"));
        assert!(cond("version_before(2.7-dev0)"));
        assert!(!cond("version_before(2.6)"));
        assert!(!cond("version_before(2.6.13)"));
        assert!(!cond("version_before(2.5)"));
        assert!(!cond("version_before(abc)"));
    }

    #[test]
    fn split_version_reads_tags_and_commits() {
        assert_eq!(split_version("1.2.1-pre2"), Some([1, 2, 1, 0, 2, 2, 0]));
        assert_eq!(split_version("1.2.10.1"), Some([1, 2, 10, 1, 3, 0, 0]));
        assert_eq!(split_version("1.5-dev18-43"), Some([1, 5, 0, 0, 1, 18, 43]));
        assert_eq!(split_version("2.4-dev18-f6818d-20"), Some([2, 4, 0, 0, 1, 18, 20]));
        assert_eq!(split_version("2.6x"), None);
        assert_eq!(split_version(""), None);
    }

    #[test]
    fn openssl_version_predicates_compare_with_the_build_number() {
        assert!(cond("openssl_version_atleast(1.1.1)"));
        assert!(cond("openssl_version_atleast(3.0.0)"));
        assert!(cond("openssl_version_atleast(3.0.0u)"));
        assert!(!cond("openssl_version_atleast(3.0.0v)"));
        assert!(!cond("openssl_version_atleast(3.0.1)"));
        assert!(cond("openssl_version_atleast(3.0.0-beta1)"));
        assert!(cond("openssl_version_before(3.0.23)"));
        assert!(!cond("openssl_version_before(3.0.0)"));
    }

    #[test]
    fn openssl_version_with_bad_argument_fails_at_evaluation() {
        let e = cond_in("openssl_version_atleast(abc)", v26()).unwrap_err();
        assert_eq!(
            e.message(),
            "invalid argument to conditional expression predicate 'openssl_version_atleast': 'abc'"
        );
        assert_eq!(e.position(), 29);
        assert!(e.crashes_haproxy(v26()));
        assert!(!e.crashes_haproxy(Version::new(3, 4)));
    }

    #[test]
    fn ssllib_name_startswith_tests_the_library_prefix() {
        assert!(cond("ssllib_name_startswith(OpenSSL)"));
        assert!(cond("ssllib_name_startswith()"));
        assert!(!cond("ssllib_name_startswith(wolfSSL)"));
        assert!(!cond("ssllib_name_startswith(openssl)"));
    }

    #[test]
    fn strstr_finds_the_second_string_in_the_first() {
        let v28 = Version::new(2, 8);
        assert_eq!(cond_in("strstr(abc,b)", v28), Ok(true));
        assert_eq!(cond_in("strstr(abc,d)", v28), Ok(false));
        assert_eq!(cond_in("strstr(abc,)", v28), Ok(true));
    }

    #[test]
    fn enabled_reports_the_default_runtime_options() {
        let v28 = Version::new(2, 8);
        assert_eq!(cond_in("enabled(EPOLL)", v28), Ok(true));
        assert_eq!(cond_in("enabled(SPLICE)", v28), Ok(true));
        assert_eq!(cond_in("enabled(KQUEUE)", v28), Ok(false));
        assert_eq!(cond_in("enabled(SERVER-SSL-VERIFY-NONE)", v28), Ok(false));
        assert_eq!(cond_in("enabled(NOPE)", v28), Ok(false));
    }

    #[test]
    fn awslc_predicates_fail_on_a_build_without_aws_lc() {
        let e = cond_in("awslc_api_atleast(35)", Version::new(3, 4)).unwrap_err();
        assert_eq!(e.message(), "invalid argument to conditional expression predicate 'awslc_api_atleast': '35'");
        let e = cond_in("awslc_api_before(26)", Version::new(3, 3)).unwrap_err();
        assert!(e.crashes_haproxy(Version::new(3, 3)));
    }

    #[test]
    fn newer_predicates_are_unparsable_in_older_versions() {
        for (expr, since) in [("strstr(a,b)", (2, 8)), ("enabled(POLL)", (2, 8)), ("awslc_api_before(1)", (3, 3))] {
            let before = Version::new(since.0, since.1 - 1);
            let e = cond_in(expr, before).unwrap_err();
            assert_eq!(e.message(), format!("unparsable conditional expression '{expr}'"));
            assert!(cond_in(expr, Version::new(since.0, since.1)).is_ok() || since == (3, 3));
        }
        // 2.6 knows openssl_* and ssllib_* although 3.3 first documents them.
        assert!(cond_in("ssllib_name_startswith(x)", v26()).is_ok());
        // fips_mode() is newer than 3.4.
        assert!(cond_in("fips_mode()", Version::new(3, 4)).is_err());
    }

    // --- parse errors (texts checked against haproxy 2.6.12) -------------------------------

    #[test]
    fn unknown_predicate_is_unparsable() {
        assert_eq!(
            err("foo("),
            "unparsable conditional expression 'foo(' in '.if' at position 1:\n  .if foo(\n      ^"
        );
    }

    #[test]
    fn missing_operand_after_operators() {
        assert_eq!(
            err("1 &&"),
            "unparsable conditional expression '&&' in '.if' at position 3:\n  .if 1 &&\n        ^"
        );
        assert_eq!(
            err("1 ||"),
            "unparsable conditional expression '1 ||' in '.if' at position 3:\n  .if 1 ||\n        ^"
        );
        assert_eq!(
            err("1 && !"),
            "unparsable conditional expression '!' in '.if' at position 6:\n  .if 1 && !\n           ^"
        );
        assert_eq!(err("!"), "unparsable conditional expression '!' in '.if' at position 1:\n  .if !\n      ^");
        assert_eq!(err("- 1"), "unparsable conditional expression '- 1' in '.if' at position 1:\n  .if - 1\n      ^");
    }

    #[test]
    fn blank_only_condition_is_an_unparsable_sub_expression() {
        let ctx_vars = HashMap::new();
        let ctx = CondCtx { version: v26(), vars: &ctx_vars };
        let e = eval(&[String::new(), String::new()], &ctx).unwrap_err();
        assert_eq!(
            e.render(".if"),
            "unparsable conditional sub-expression ' ' in '.if' at position 1:\n  .if  \n      ^"
        );
    }

    #[test]
    fn parenthesis_errors() {
        assert_eq!(
            err("(1"),
            "expected ')' after conditional expression '(1' in '.if' at position 1:\n  .if (1\n      ^"
        );
        assert_eq!(err("( )"), "unparsable conditional expression ')' in '.if' at position 3:\n  .if ( )\n        ^");
        assert_eq!(err("("), "unparsable conditional expression '(' in '.if' at position 1:\n  .if (\n      ^");
    }

    #[test]
    fn trailing_garbage_is_an_unexpected_character() {
        assert_eq!(
            err("1 2"),
            "unexpected character '2' at the end of conditional expression '1 2' in '.if' at position 3:\n  .if 1 2\n        ^"
        );
        assert_eq!(
            err("1abc"),
            "unexpected character 'a' at the end of conditional expression '1abc' in '.if' at position 2:\n  .if 1abc\n       ^"
        );
        assert_eq!(
            err("08"),
            "unexpected character '8' at the end of conditional expression '08' in '.if' at position 2:\n  .if 08\n       ^"
        );
        // the predicate name ends at a space, so its arguments must touch it
        assert_eq!(
            err("defined (X)"),
            "unexpected character '(' at the end of conditional expression 'defined (X)' in '.if' at position 9:\n  .if defined (X)\n              ^"
        );
    }

    #[test]
    fn argument_count_and_paren_errors() {
        assert_eq!(
            err("streq(a,b"),
            "expected ')' in argument 1 of predicate 'streq' used in conditional expression in '.if' at position 10:\n  .if streq(a,b\n               ^"
        );
        assert_eq!(
            err("streq()"),
            "missing arguments (got 1/2), type 'string' expected in argument 1 of predicate 'streq' used in conditional expression in '.if' at position 7:\n  .if streq()\n            ^"
        );
        assert_eq!(
            err("streq"),
            "missing arguments (got 1/2), type 'string' expected in argument 1 of predicate 'streq' used in conditional expression in '.if' at position 6:\n  .if streq\n           ^"
        );
        assert_eq!(
            err("defined(a,b) && 1"),
            "expected ')' before ',b) && 1' in argument 1 of predicate 'defined' used in conditional expression in '.if' at position 10:\n  .if defined(a,b) && 1\n               ^"
        );
    }

    #[test]
    fn trailing_backslash_in_argument_fails_to_parse() {
        let vars = HashMap::new();
        let ctx = CondCtx { version: v26(), vars: &vars };
        let e = eval(&["streq(a\\".to_string()], &ctx).unwrap_err();
        assert_eq!(
            e.render(".if"),
            "failed to parse '\\' after 'a' as type 'string' at position 1 in argument 0 of predicate 'streq' used in conditional expression in '.if' at position 8:\n  .if streq(a\\\n             ^"
        );
    }

    #[test]
    fn long_expressions_are_cut_around_the_caret() {
        let mut expr = String::new();
        for i in 1..=12 {
            expr.push_str(&format!("streq({i},x) && "));
        }
        expr.push_str("bad");
        assert_eq!(
            err(&expr),
            "unparsable conditional expression 'bad' in '.if' at position 172:\n  .if ...) && streq(11,x) && streq(12,x) && bad...\n                                            ^"
        );
        let e = cond_in(&expr, v26()).unwrap_err();
        assert_eq!(
            e.render(".elif"),
            "unparsable conditional expression 'bad' in '.elif' at position 172:\n  .elif ... && streq(11,x) && streq(12,x) && bad...\n                                             ^"
        );
    }

    #[test]
    fn recursion_budget_limits_long_chains() {
        let ok = vec!["1"; 1022].join("&&");
        assert!(cond(&ok));
        let too_long = vec!["1"; 1023].join("&&");
        assert_eq!(cond_in(&too_long, v26()).unwrap_err().message(), "unparsable conditional expression '1'");
        let deep = format!("{}1{}", "(".repeat(400), ")".repeat(400));
        assert!(cond_in(&deep, v26()).unwrap_err().message().starts_with("unparsable conditional sub-expression '((("));
    }

    // --- nesting (config text) -------------------------------------------------------------

    #[test]
    fn if_else_picks_one_branch() {
        let cfg = "global\n.if 0\n.notice \"a\"\n.else\n.notice \"b\"\n.endif\n";
        assert_eq!(run(cfg), ["live 1: global", "[NOTICE] 5: 'b'."]);
    }

    #[test]
    fn elif_chain_takes_first_true_branch_only() {
        let cfg = "\
.if 0
  maxconn 1
.elif 1
  maxconn 2
.elif 1
  maxconn 3
.else
  maxconn 4
.endif
";
        assert_eq!(run(cfg), ["live 4: maxconn"]);
    }

    #[test]
    fn nested_blocks_inside_dead_branches_are_skipped_unevaluated() {
        let cfg = "\
.if 0
  .if foo(
    maxconn 1
  .else
    maxconn 2
  .endif
.elif 1
  .if 1
    maxconn 3
  .elif bad(
  .endif
.endif
";
        assert_eq!(run(cfg), ["live 9: maxconn"]);
    }

    #[test]
    fn dead_blocks_ignore_unknown_directives_and_alerts() {
        let cfg = ".if 0\n.ifdef X\n.alert \"x\"\n.endif\n.notice \"after\"\n";
        assert_eq!(run(cfg), ["[NOTICE] 5: 'after'."]);
    }

    #[test]
    fn elif_error_is_reported_with_elif_caret() {
        assert_eq!(
            run(".if 0\n.elif foo(\n.endif\n"),
            ["[ALERT] 2: unparsable conditional expression 'foo(' in '.elif' at position 1:\n  .elif foo(\n        ^"]
        );
        // a taken .if means the .elif is never parsed
        assert_eq!(run(".if 1\n.elif foo(\n.endif\n"), Vec::<String>::new());
    }

    #[test]
    fn unclosed_if_is_reported_at_the_last_line() {
        let cfg = "global\n.if 1\n.notice \"a\"\n\n\n# comment\n";
        assert_eq!(run(cfg), ["live 1: global", "[NOTICE] 3: 'a'.", "[ALERT] 6: non-terminated '.if' block."]);
        let mut st = CondStack::new();
        let vars = HashMap::new();
        let ctx = CondCtx { version: v26(), vars: &vars };
        assert!(st.handle(2, ".if", &[], &ctx).is_ok());
        assert_eq!(st.open_if_line(), Some(2));
    }

    #[test]
    fn lone_directives_are_fatal() {
        assert_eq!(run(".endif\n.notice \"after\"\n"), ["[ALERT] 1: lone '.endif' with no matching '.if'."]);
        assert_eq!(run(".else\n"), ["[ALERT] 1: lone '.else' with no matching '.if'."]);
        assert_eq!(run(".elif 1\n"), ["[ALERT] 1: lone '.elif' with no matching '.if'."]);
    }

    #[test]
    fn else_closes_the_chain() {
        assert_eq!(run(".if 1\n.else\n.else\n.endif\n"), ["[ALERT] 3: '.else' after '.else' is not permitted."]);
        assert_eq!(run(".if 1\n.else\n.elif 1\n.endif\n"), ["[ALERT] 3: '.elif' after '.else' is not permitted."]);
    }

    #[test]
    fn else_and_endif_take_no_argument_and_stop_the_file() {
        assert_eq!(
            run("global\n.if 1\n.else x\n.endif\n"),
            [
                "live 1: global",
                "[ALERT] 3: Unexpected argument 'x' for '.else'.",
                "[ALERT] 3: non-terminated '.if' block."
            ]
        );
        let e = CondStack::new().handle(1, ".endif", &["x".to_string()], &ctx26()).unwrap_err();
        assert_eq!(e.message, "Unexpected argument 'x' for '.endif'.");
        assert_eq!(e.stop, Stop::FileThenAbort);
        // `.endif ""`: an empty first word is no argument for HAProxy
        let mut st = CondStack::new();
        st.handle(1, ".if", &[], &ctx26()).unwrap();
        assert!(st.handle(2, ".endif", &[String::new()], &ctx26()).is_ok());
    }

    fn ctx26() -> CondCtx<'static> {
        static EMPTY: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();
        CondCtx { version: v26(), vars: EMPTY.get_or_init(HashMap::new) }
    }

    #[test]
    fn unknown_directive_stops_the_file() {
        assert_eq!(run(".ifdef X\n.notice \"after\"\n"), ["[ALERT] 1: unknown directive '.ifdef'."]);
        let e = CondStack::new().handle(1, ".ifdef", &[], &ctx26()).unwrap_err();
        assert_eq!(e.stop, Stop::File);
    }

    #[test]
    fn hundredth_nested_if_is_refused() {
        let ok = ".if 0\n".repeat(99) + &".endif\n".repeat(99);
        assert_eq!(run(&ok), Vec::<String>::new());
        let cfg = ".if 1\n".repeat(100);
        assert_eq!(run(&cfg), ["[ALERT] 100: too many nested '.if', max is 100."]);
    }

    #[test]
    fn condition_error_aborts_at_once() {
        let e = CondStack::new().handle(1, ".if", &["foo(".to_string()], &ctx26()).unwrap_err();
        assert_eq!(e.stop, Stop::Abort);
        assert!(!e.crashes_haproxy);
        let e = CondStack::new().handle(1, ".if", &["openssl_version_before(x)".to_string()], &ctx26()).unwrap_err();
        assert!(e.crashes_haproxy);
    }

    // --- message directives ----------------------------------------------------------------

    #[test]
    fn message_directives_report_their_severity() {
        let cfg = ".diag \"d\"\n.notice \"n\"\n.warning \"w\"\n";
        assert_eq!(run(cfg), ["[DIAG] 1: 'd'.", "[NOTICE] 2: 'n'.", "[WARNING] 3: 'w'."]);
    }

    #[test]
    fn alert_is_fatal_and_stops_everything() {
        assert_eq!(run(".alert \"boom\"\n.notice \"after\"\n.if 1\n"), ["[ALERT] 1: 'boom'."]);
        assert_eq!(run(".alert\n"), ["[ALERT] 1: ''."]);
    }

    #[test]
    fn message_without_argument_prints_empty_quotes() {
        assert_eq!(run(".notice\n"), ["[NOTICE] 1: ''."]);
    }

    #[test]
    fn message_with_two_words_asks_for_quotes_and_goes_on() {
        assert_eq!(
            run(".notice a b\n.notice c\n"),
            [
                "[ALERT] 1: Unexpected argument 'b' for '.notice'. Use quotes if the message should contain spaces.",
                "[NOTICE] 2: 'c'."
            ]
        );
        assert_eq!(
            run(".alert a b\n"),
            ["[ALERT] 1: Unexpected argument 'b' for '.alert'. Use quotes if the message should contain spaces."]
        );
    }

    #[test]
    fn empty_words_count_as_missing_arguments() {
        // HAProxy tests the first character of the word, so "" is no argument at all.
        assert_eq!(run(".if 1\n.else \"\"\n.endif\n.notice a \"\" c\n"), ["[NOTICE] 4: 'a'."]);
        // and a leading empty word only adds a space before the expression
        assert_eq!(run(".if \"\" 1\nmaxconn 1\n.endif\n"), ["live 2: maxconn"]);
    }

    #[test]
    fn nul_bytes_in_words_become_spaces() {
        let vars = HashMap::new();
        let ctx = CondCtx { version: v26(), vars: &vars };
        assert_eq!(eval(&["streq(a\0b,a b)".to_string()], &ctx), Ok(true));
    }

    #[test]
    fn comments_after_directives_are_ignored() {
        assert_eq!(run(".if 1 # why\nmaxconn 1\n.endif # end\n"), ["live 2: maxconn"]);
    }

    #[test]
    fn variables_reach_the_condition_through_the_lexer() {
        let vars: HashMap<String, String> = [("EDGE_TLS".to_string(), "yes".to_string())].into_iter().collect();
        // the lexer has already replaced "$EDGE_TLS" by its value
        let cfg = "\
.if streq(yes,yes) && feature(OPENSSL)
    .notice \"TLS listeners enabled\"
.elif defined(FORCE_PLAIN)
    .warning \"plain-text only\"
.else
    .diag \"nothing selected\"
.endif
.if defined(EDGE_TLS) && !defined(FORCE_PLAIN)
    maxconn 1
.endif
";
        assert_eq!(run_with(cfg, v26(), &vars), ["[NOTICE] 2: 'TLS listeners enabled'.", "live 9: maxconn"]);
    }
}
