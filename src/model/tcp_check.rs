//! `tcp-check` lines as typed rules, read where each line is: HAProxy's messages for what it
//! refuses, and a separate answer for what hapx's check engine cannot run.
use std::net::IpAddr;

use super::regex::Regex;
use super::units::atol;

/// One check's verdict, named as HAProxy names them (`L4OK`, `L7RSP`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckStatus {
    /// Simulated failure from traffic observation (`observe` + `on-error`).
    Hana,
    SockErr,
    L4Ok,
    L4Tout,
    L4Con,
    L6Ok,
    L6Tout,
    L6Rsp,
    L7Tout,
    L7Rsp,
    L7Ok,
    L7OkC,
    L7Sts,
}

impl CheckStatus {
    /// Parses the names `ok-status`, `error-status` and `tout-status` accept.
    pub fn from_name(name: &str) -> Option<CheckStatus> {
        Some(match name {
            "L4OK" => CheckStatus::L4Ok,
            "L4TOUT" => CheckStatus::L4Tout,
            "L4CON" => CheckStatus::L4Con,
            "L6OK" => CheckStatus::L6Ok,
            "L6TOUT" => CheckStatus::L6Tout,
            "L6RSP" => CheckStatus::L6Rsp,
            "L7TOUT" => CheckStatus::L7Tout,
            "L7RSP" => CheckStatus::L7Rsp,
            "L7OK" => CheckStatus::L7Ok,
            "L7OKC" => CheckStatus::L7OkC,
            "L7STS" => CheckStatus::L7Sts,
            _ => return None,
        })
    }
}

/// What an `expect` rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectKind {
    /// `string`: the text occurs in the response.
    String,
    /// `rstring`: the regex (hapx's subset, see `regex.rs`) matches the response.
    Rstring,
    /// `binary`: the hex-decoded bytes occur in the response.
    Binary,
    /// `rbinary`: the regex matches the response dumped as uppercase hex.
    Rbinary,
}

/// The compiled form of an expect pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// `string` (its bytes) or `binary` (decoded).
    Bytes(Vec<u8>),
    /// `rstring` or `rbinary`.
    Regex(Regex),
}

/// One `tcp-check expect` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub negate: bool,
    pub kind: ExpectKind,
    /// The pattern as written (hex digits for `binary`), for messages.
    pub pattern: String,
    pub matcher: Matcher,
    /// `min-recv`: -1 (the default) waits for a match until the response ends.
    pub min_recv: i64,
    pub comment: Option<String>,
    pub ok_status: Option<CheckStatus>,
    pub error_status: Option<CheckStatus>,
    pub tout_status: Option<CheckStatus>,
}

/// One `tcp-check` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpCheckRule {
    Connect {
        port: Option<u16>,
        addr: Option<IpAddr>,
        comment: Option<String>,
    },
    Send {
        data: Vec<u8>,
        comment: Option<String>,
    },
    /// `send-binary`: the hex string, decoded.
    SendBinary {
        data: Vec<u8>,
        comment: Option<String>,
    },
    /// `send-lf`: sent as literal text (log-format is not evaluated yet).
    SendLf {
        text: String,
        comment: Option<String>,
    },
    Expect(Expect),
    Comment(String),
}

/// Why a line gives no rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// HAProxy refuses it: its text after `parsing [file:line] : `.
    Invalid(String),
    /// Valid, but the check engine cannot run it: what to name as unsupported.
    Unsupported(String),
}

fn word<'a>(words: &[&'a str], i: usize) -> Option<&'a str> {
    words.get(i).copied().filter(|w| !w.is_empty())
}

/// Decodes a hex string as `send-binary` and `expect binary` take it (HAProxy's parse_binary).
pub fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 {
        return Err("invalid binary string (an even number of hex digit is expected)".to_string());
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("invalid binary string (an hex digit is expected (found '{c}'))"));
    }
    let digit = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok()).unwrap_or(0);
    Ok(text.as_bytes().chunks(2).map(|p| p.iter().fold(0u8, |acc, &b| (acc << 4) | digit(b))).collect())
}

type Step = Result<TcpCheckRule, Refusal>;

fn invalid(text: impl Into<String>) -> Refusal {
    Refusal::Invalid(text.into())
}

fn parse_comment(words: &[&str], i: usize) -> Result<String, Refusal> {
    word(words, i + 1).map(str::to_string).ok_or_else(|| invalid("'comment' expects a string as argument."))
}

fn parse_connect(words: &[&str], prior: &[TcpCheckRule]) -> Step {
    if prior.iter().any(|r| !matches!(r, TcpCheckRule::Comment(_))) {
        return Err(invalid(
            "first step MUST also be a 'connect', optionally preceded by a 'set-var', an 'unset-var' or a \
             'comment', when there is a 'connect' step in the tcp-check ruleset",
        ));
    }
    let (mut port, mut addr, mut comment) = (None, None, None);
    let mut i = 2;
    while let Some(w) = word(words, i) {
        match w {
            "port" => {
                let v = word(words, i + 1)
                    .ok_or_else(|| invalid("'port' expects a port number or a sample expression as argument."))?;
                match v.parse::<u16>() {
                    Ok(p) if p > 0 => port = Some(p),
                    _ => {
                        return Err(invalid(format!(
                            "expects a valid TCP port (from range 1 to 65535) or a sample expression, got {v}."
                        )))
                    }
                }
                i += 2;
            }
            "addr" => {
                let v = word(words, i + 1).ok_or_else(|| invalid("'addr' expects <ipv4|ipv6> as argument."))?;
                addr = Some(v.parse::<IpAddr>().map_err(|_| invalid(format!("'addr' : invalid address '{v}'.")))?);
                i += 2;
            }
            "comment" => {
                comment = Some(parse_comment(words, i)?);
                i += 2;
            }
            // Closing with a reset only spares TIME_WAIT sockets; harmless to ignore.
            "linger" => i += 1,
            "send-proxy" | "via-socks4" | "ssl" | "sni" | "alpn" | "proto" | "default" => {
                return Err(Refusal::Unsupported(format!("tcp-check connect {w}")))
            }
            other => {
                return Err(invalid(format!(
                    "expects 'comment', 'port', 'addr', 'send-proxy', 'via-socks4', 'ssl', 'sni', 'alpn', \
                     'proto', 'linger' or 'default' but got '{other}' as argument."
                )))
            }
        }
    }
    Ok(TcpCheckRule::Connect { port, addr, comment })
}

fn parse_send(words: &[&str]) -> Step {
    let kind = word(words, 1).unwrap_or_default();
    let data = word(words, 2).ok_or_else(|| {
        let what = if kind.starts_with("send-binary") { "binary string" } else { "string" };
        invalid(format!("'{kind}' expects a {what} as argument"))
    })?;
    let mut comment = None;
    let mut i = 3;
    while let Some(w) = word(words, i) {
        if w != "comment" {
            return Err(invalid(format!("expects 'comment' but got '{w}' as argument.")));
        }
        comment = Some(parse_comment(words, i)?);
        i += 2;
    }
    let binary = || decode_hex(data).map_err(|m| invalid(format!("'{data}' {m}.")));
    Ok(match kind {
        "send-binary" | "send-binary-lf" => TcpCheckRule::SendBinary { data: binary()?, comment },
        "send-lf" => TcpCheckRule::SendLf { text: data.to_string(), comment },
        _ => TcpCheckRule::Send { data: data.as_bytes().to_vec(), comment },
    })
}

fn parse_status(words: &[&str], i: usize, allowed: &[&str], kw: &str) -> Result<CheckStatus, Refusal> {
    let v = word(words, i + 1).ok_or_else(|| invalid(format!("'{kw}' expects a string as argument")))?;
    match CheckStatus::from_name(v) {
        Some(s) if allowed.contains(&v) => Ok(s),
        _ => {
            let list = match allowed {
                [a, b, c, d] => format!("'{a}', '{b}', '{c}' or '{d}'"),
                [a, b, c] => format!("'{a}', '{b}' or '{c}'"),
                _ => allowed.join(", "),
            };
            Err(invalid(format!("'{kw}' only supports {list} status (got '{v}').")))
        }
    }
}

fn parse_expect(words: &[&str]) -> Step {
    if word(words, 2).is_none() {
        return Err(invalid("expects at least a matching pattern as arguments"));
    }
    let (mut negate, mut min_recv, mut comment) = (false, -1, None);
    let (mut ok_status, mut error_status, mut tout_status) = (None, None, None);
    let mut pattern: Option<(ExpectKind, &str)> = None;
    let mut i = 2;
    while let Some(w) = word(words, i) {
        let mut w = w;
        if w.starts_with('!') {
            let trimmed = w.trim_start_matches('!');
            if (w.len() - trimmed.len()) % 2 == 1 {
                negate = !negate;
            }
            if trimmed.is_empty() {
                i += 1;
                match word(words, i) {
                    Some(next) => w = next,
                    None => break,
                }
            } else {
                w = trimmed;
            }
        }
        match w {
            "min-recv" => {
                let v = word(words, i + 1).ok_or_else(|| invalid("'min-recv' expects a integer as argument"))?;
                let n = atol(v);
                if !(-1..=i64::from(i32::MAX)).contains(&n) {
                    return Err(invalid("'min-recv' expects -1 or an integer from 0 to INT_MAX"));
                }
                min_recv = n;
                i += 2;
            }
            "string" | "rstring" | "binary" | "rbinary" => {
                if pattern.is_some() {
                    return Err(invalid("only on pattern expected"));
                }
                let p = word(words, i + 1).ok_or_else(|| invalid(format!("'{w}' expects a <pattern> as argument")))?;
                let kind = match w {
                    "string" => ExpectKind::String,
                    "rstring" => ExpectKind::Rstring,
                    "binary" => ExpectKind::Binary,
                    _ => ExpectKind::Rbinary,
                };
                pattern = Some((kind, p));
                i += 2;
            }
            "string-lf" | "binary-lf" | "on-success" | "on-error" | "status-code" => {
                return Err(Refusal::Unsupported(format!("tcp-check expect {w}")))
            }
            "comment" => {
                comment = Some(parse_comment(words, i)?);
                i += 2;
            }
            "ok-status" => {
                ok_status = Some(parse_status(words, i, &["L4OK", "L6OK", "L7OK", "L7OKC"], w)?);
                i += 2;
            }
            "error-status" => {
                error_status = Some(parse_status(words, i, &["L4CON", "L6RSP", "L7RSP", "L7STS"], w)?);
                i += 2;
            }
            "tout-status" => {
                tout_status = Some(parse_status(words, i, &["L4TOUT", "L6TOUT", "L7TOUT"], w)?);
                i += 2;
            }
            other => {
                return Err(invalid(format!(
                    "'only supports min-recv, [!]string', '[!]rstring', '[!]string-lf', '[!]binary', \
                     '[!]rbinary', '[!]binary-lf' but got '{other}' as argument."
                )))
            }
        }
    }
    let (kind, pattern) = pattern.ok_or_else(|| invalid("pattern not found"))?;
    // Compiled now: what the engine could not match is refused here, not at check time.
    let matcher = match kind {
        ExpectKind::String => Matcher::Bytes(pattern.as_bytes().to_vec()),
        ExpectKind::Binary => Matcher::Bytes(decode_hex(pattern).map_err(invalid)?),
        ExpectKind::Rstring | ExpectKind::Rbinary => match Regex::new(pattern) {
            Ok(r) => Matcher::Regex(r),
            // PCRE may accept what hapx's small engine does not.
            Err(m) => return Err(Refusal::Unsupported(format!("tcp-check expect regex '{pattern}' ({m})"))),
        },
    };
    Ok(TcpCheckRule::Expect(Expect {
        negate,
        kind,
        pattern: pattern.to_string(),
        matcher,
        min_recv,
        comment,
        ok_status,
        error_status,
        tout_status,
    }))
}

/// Parses one `tcp-check` line (every word, `tcp-check` included) after the rules before it.
/// An `Invalid` text is whole: `'tcp-check <action>' : <reason>.`
pub fn parse_rule(words: &[&str], prior: &[TcpCheckRule]) -> Step {
    let head = word(words, 0).unwrap_or_default();
    let action = word(words, 1).unwrap_or_default();
    let rule = match action {
        "connect" => parse_connect(words, prior),
        "send" | "send-binary" | "send-lf" | "send-binary-lf" => parse_send(words),
        "expect" => parse_expect(words),
        // HAProxy takes the first word and ignores the others.
        "comment" => match word(words, 2) {
            Some(c) => Ok(TcpCheckRule::Comment(c.to_string())),
            None => Err(invalid("expects a string as argument")),
        },
        "set-var" | "unset-var" => Err(Refusal::Unsupported(format!("tcp-check {action}"))),
        _ if action.starts_with("set-var(") || action.starts_with("unset-var(") => {
            Err(Refusal::Unsupported(format!("tcp-check {action}")))
        }
        _ => {
            return Err(invalid(format!(
                "'{head}' only supports 'comment', 'connect', 'send', 'send-binary', 'expect', \
                 'set-var(<var-name>)', 'unset-var(<var-name>)'. but got '{action}'"
            )))
        }
    };
    rule.map_err(|r| match r {
        Refusal::Invalid(m) => Refusal::Invalid(format!("'{head} {action}' : {m}.")),
        other => other,
    })
}

/// Parses whole lines in order (tests and embedders): the first refusal, as text.
pub fn parse_lines(lines: &[Vec<String>]) -> Result<Vec<TcpCheckRule>, String> {
    let mut rules = Vec::with_capacity(lines.len());
    for line in lines {
        let words: Vec<&str> = line.iter().map(String::as_str).collect();
        match parse_rule(&words, &rules) {
            Ok(r) => rules.push(r),
            Err(Refusal::Invalid(m)) => return Err(m),
            Err(Refusal::Unsupported(what)) => return Err(format!("'{what}' is not supported by hapx yet.")),
        }
    }
    Ok(rules)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Config text → the words of each `tcp-check` line (for tests here and in the runtime).
    pub(crate) fn lines(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn mqtt_connect_rules_parse_and_decode() {
        let r = parse_lines(&lines(
            "tcp-check send-binary 101000\n\
             tcp-check expect binary 20020000",
        ))
        .unwrap_or_default();
        assert_eq!(r.len(), 2);
        assert_eq!(r.first(), Some(&TcpCheckRule::SendBinary { data: vec![0x10, 0x10, 0x00], comment: None }));
        match r.get(1) {
            Some(TcpCheckRule::Expect(e)) => assert_eq!(e.matcher, Matcher::Bytes(vec![0x20, 0x02, 0, 0])),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn negated_expect_with_comment() {
        let r = parse_lines(&lines("tcp-check expect ! string ERR comment noerr")).unwrap_or_default();
        match r.first() {
            Some(TcpCheckRule::Expect(e)) => {
                assert!(e.negate);
                assert_eq!(e.pattern, "ERR");
                assert_eq!(e.comment.as_deref(), Some("noerr"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn connect_after_send_is_refused() {
        let e = parse_lines(&lines("tcp-check send x\ntcp-check connect port 80")).unwrap_err();
        assert!(e.starts_with("'tcp-check connect' : first step MUST also be a 'connect'"), "{e}");
    }

    #[test]
    fn bad_values_get_haproxys_words() {
        let refused = |l: &str| parse_lines(&lines(l)).unwrap_err();
        assert_eq!(
            refused("tcp-check send-binary 10z0"),
            "'tcp-check send-binary' : '10z0' invalid binary string (an hex digit is expected (found 'z')).."
        );
        assert_eq!(
            refused("tcp-check expect binary abc"),
            "'tcp-check expect' : invalid binary string (an even number of hex digit is expected)."
        );
        assert_eq!(
            refused("tcp-check connect port 0"),
            "'tcp-check connect' : expects a valid TCP port (from range 1 to 65535) or a sample expression, got 0.."
        );
        assert_eq!(
            refused("tcp-check expect string a ok-status FOO"),
            "'tcp-check expect' : 'ok-status' only supports 'L4OK', 'L6OK', 'L7OK' or 'L7OKC' status (got 'FOO').."
        );
        assert_eq!(
            refused("tcp-check expect string"),
            "'tcp-check expect' : 'string' expects a <pattern> as argument."
        );
    }

    #[test]
    fn what_the_engine_cannot_run_is_unsupported_not_invalid() {
        let words = ["tcp-check", "expect", "rstring", "(a)\\1"];
        assert!(matches!(parse_rule(&words, &[]), Err(Refusal::Unsupported(_))));
        let words = ["tcp-check", "connect", "ssl"];
        assert_eq!(parse_rule(&words, &[]), Err(Refusal::Unsupported("tcp-check connect ssl".into())));
        assert!(parse_lines(&lines("tcp-check expect rstring ^\\+OK")).is_ok());
    }

    #[test]
    fn haproxy_reads_min_recv_and_comment_loosely() {
        assert!(parse_lines(&lines("tcp-check expect min-recv x string a")).is_ok());
        assert_eq!(parse_lines(&lines("tcp-check comment a b")), Ok(vec![TcpCheckRule::Comment("a".into())]));
    }
}
