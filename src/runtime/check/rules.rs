//! `tcp-check` rules: parsed from the words of each `tcp-check ...` line, then compiled into
//! the steps the engine runs (implicit first connect, comments moved onto the rules they
//! describe, step numbers as HAProxy counts them).
use std::net::IpAddr;

use super::regex::Regex;
use super::status::CheckStatus;

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

/// One `tcp-check expect` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub negate: bool,
    pub kind: ExpectKind,
    /// The pattern as written (hex digits for `binary`).
    pub pattern: String,
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

fn word(words: &[String], i: usize) -> Option<&str> {
    words.get(i).map(String::as_str).filter(|w| !w.is_empty())
}

/// Decodes a hex string as `send-binary` and `expect binary` take it.
pub fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 {
        return Err(format!("'{text}' invalid binary string (bad length)"));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 2);
    for pair in bytes.chunks(2) {
        let digits = std::str::from_utf8(pair).ok();
        match digits.and_then(|d| u8::from_str_radix(d, 16).ok()) {
            Some(v) => out.push(v),
            None => return Err(format!("'{text}' invalid binary string (invalid hex digit)")),
        }
    }
    Ok(out)
}

fn parse_comment(words: &[String], i: usize) -> Result<String, String> {
    word(words, i + 1).map(str::to_string).ok_or_else(|| "'comment' expects a string as argument.".to_string())
}

fn parse_connect(words: &[String], prior: &[TcpCheckRule]) -> Result<TcpCheckRule, String> {
    if prior.iter().any(|r| !matches!(r, TcpCheckRule::Comment(_))) {
        return Err("first step MUST also be a 'connect', optionally preceded by a 'set-var', an 'unset-var' or a \
                    'comment', when there is a 'connect' step in the tcp-check ruleset"
            .to_string());
    }
    let (mut port, mut addr, mut comment) = (None, None, None);
    let mut i = 2;
    while let Some(w) = word(words, i) {
        match w {
            "port" => {
                let v = word(words, i + 1).ok_or("'port' expects a port number or a sample expression as argument.")?;
                match v.parse::<u16>() {
                    Ok(p) if p > 0 => port = Some(p),
                    _ => {
                        return Err(format!(
                            "expects a valid TCP port (from range 1 to 65535) or a sample expression, got {v}."
                        ))
                    }
                }
                i += 2;
            }
            "addr" => {
                let v = word(words, i + 1).ok_or("'addr' expects <ipv4|ipv6> as argument.")?;
                addr = Some(v.parse::<IpAddr>().map_err(|_| format!("'addr' : invalid address '{v}'."))?);
                i += 2;
            }
            "comment" => {
                comment = Some(parse_comment(words, i)?);
                i += 2;
            }
            // Closing with a reset only spares TIME_WAIT sockets; harmless to ignore.
            "linger" => i += 1,
            "send-proxy" | "via-socks4" | "ssl" | "sni" | "alpn" | "proto" | "default" => {
                return Err(format!("'{w}' is not supported by hapx health checks yet."))
            }
            other => {
                return Err(format!(
                    "expects 'comment', 'port', 'addr', 'send-proxy', 'via-socks4', 'ssl', 'sni', 'alpn', \
                     'proto', 'linger' or 'default' but got '{other}' as argument."
                ))
            }
        }
    }
    Ok(TcpCheckRule::Connect { port, addr, comment })
}

fn parse_send(words: &[String]) -> Result<TcpCheckRule, String> {
    let kind = word(words, 1).unwrap_or_default();
    let data = word(words, 2).ok_or_else(|| {
        let what = if kind == "send-binary" { "binary string" } else { "string" };
        format!("'{kind}' expects a {what} as argument")
    })?;
    let mut comment = None;
    let mut i = 3;
    while let Some(w) = word(words, i) {
        if w != "comment" {
            return Err(format!("expects 'comment' but got '{w}' as argument."));
        }
        comment = Some(parse_comment(words, i)?);
        i += 2;
    }
    Ok(match kind {
        "send-binary" => TcpCheckRule::SendBinary { data: decode_hex(data)?, comment },
        "send-lf" => TcpCheckRule::SendLf { text: data.to_string(), comment },
        "send-binary-lf" => TcpCheckRule::SendBinary { data: decode_hex(data)?, comment },
        _ => TcpCheckRule::Send { data: data.as_bytes().to_vec(), comment },
    })
}

fn parse_status(words: &[String], i: usize, allowed: &[&str], kw: &str) -> Result<CheckStatus, String> {
    let v = word(words, i + 1).ok_or_else(|| format!("'{kw}' expects a string as argument"))?;
    match CheckStatus::from_name(v) {
        Some(s) if allowed.contains(&v) => Ok(s),
        _ => {
            let list = match allowed {
                [a, b, c, d] => format!("'{a}', '{b}', '{c}' or '{d}'"),
                [a, b, c] => format!("'{a}', '{b}' or '{c}'"),
                _ => allowed.join(", "),
            };
            Err(format!("'{kw}' only supports {list} status (got '{v}')."))
        }
    }
}

fn parse_expect(words: &[String]) -> Result<TcpCheckRule, String> {
    if word(words, 2).is_none() {
        return Err("expects at least a matching pattern as arguments".to_string());
    }
    let mut e = Expect {
        negate: false,
        kind: ExpectKind::String,
        pattern: String::new(),
        min_recv: -1,
        comment: None,
        ok_status: None,
        error_status: None,
        tout_status: None,
    };
    let mut kind = None;
    let mut i = 2;
    while let Some(w) = word(words, i) {
        let mut w = w;
        if w.starts_with('!') {
            let trimmed = w.trim_start_matches('!');
            if (w.len() - trimmed.len()) % 2 == 1 {
                e.negate = !e.negate;
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
                let v = word(words, i + 1).ok_or("'min-recv' expects a integer as argument")?;
                match v.parse::<i64>() {
                    Ok(n) if (-1..=i64::from(i32::MAX)).contains(&n) => e.min_recv = n,
                    _ => return Err("'min-recv' expects -1 or an integer from 0 to INT_MAX".to_string()),
                }
                i += 2;
            }
            "string" | "rstring" | "binary" | "rbinary" => {
                if kind.is_some() {
                    return Err("only on pattern expected".to_string());
                }
                let p = word(words, i + 1).ok_or_else(|| format!("'{w}' expects a <pattern> as argument"))?;
                kind = Some(match w {
                    "string" => ExpectKind::String,
                    "rstring" => ExpectKind::Rstring,
                    "binary" => ExpectKind::Binary,
                    _ => ExpectKind::Rbinary,
                });
                e.pattern = p.to_string();
                i += 2;
            }
            "string-lf" | "binary-lf" => {
                return Err(format!("'{w}' (log-format pattern) is not supported by hapx health checks yet."))
            }
            "comment" => {
                e.comment = Some(parse_comment(words, i)?);
                i += 2;
            }
            "ok-status" => {
                e.ok_status = Some(parse_status(words, i, &["L4OK", "L6OK", "L7OK", "L7OKC"], w)?);
                i += 2;
            }
            "error-status" => {
                e.error_status = Some(parse_status(words, i, &["L4CON", "L6RSP", "L7RSP", "L7STS"], w)?);
                i += 2;
            }
            "tout-status" => {
                e.tout_status = Some(parse_status(words, i, &["L4TOUT", "L6TOUT", "L7TOUT"], w)?);
                i += 2;
            }
            "on-success" | "on-error" | "status-code" => {
                return Err(format!("'{w}' is not supported by hapx health checks yet."))
            }
            other => {
                return Err(format!(
                    "'only supports min-recv, [!]string', '[!]rstring', '[!]string-lf', '[!]binary', \
                     '[!]rbinary', '[!]binary-lf' but got '{other}' as argument."
                ))
            }
        }
    }
    e.kind = kind.ok_or("pattern not found")?;
    // Refuse what the engine could not match, now rather than at check time.
    match e.kind {
        ExpectKind::Binary => {
            decode_hex(&e.pattern)?;
        }
        ExpectKind::Rstring | ExpectKind::Rbinary => {
            Regex::new(&e.pattern).map_err(|m| format!("regex '{}' : {m}", e.pattern))?;
        }
        ExpectKind::String => {}
    }
    Ok(TcpCheckRule::Expect(e))
}

/// Parses the words of every `tcp-check` line of a backend, in order.
pub fn parse_tcp_check_rules(lines: &[Vec<String>]) -> Result<Vec<TcpCheckRule>, String> {
    let mut rules = Vec::with_capacity(lines.len());
    for words in lines {
        let head = word(words, 0).unwrap_or_default();
        let action = word(words, 1).unwrap_or_default();
        let rule = match action {
            "connect" => parse_connect(words, &rules),
            "send" | "send-binary" | "send-lf" | "send-binary-lf" => parse_send(words),
            "expect" => parse_expect(words),
            "comment" => match word(words, 2) {
                Some(c) if word(words, 3).is_none() => Ok(TcpCheckRule::Comment(c.to_string())),
                Some(_) => Err("expects exactly 1 argument".to_string()),
                None => Err("expects a string as argument".to_string()),
            },
            "set-var" | "unset-var" => Err(format!("'{action}' is not supported by hapx health checks yet.")),
            _ => {
                return Err(format!(
                    "'{head}' only supports 'comment', 'connect', 'send', 'send-binary', 'expect', \
                     'set-var(<var-name>)', 'unset-var(<var-name>)'. but got '{action}'"
                ))
            }
        };
        rules.push(rule.map_err(|m| format!("'{head} {action}' : {m}."))?);
    }
    Ok(rules)
}

/// The compiled matcher of an expect step.
#[derive(Clone, Debug)]
pub(crate) enum Matcher {
    Bytes(Vec<u8>),
    Regex(Regex),
}

#[derive(Clone, Debug)]
pub(crate) enum Action {
    Connect {
        port: Option<u16>,
        addr: Option<IpAddr>,
        implicit: bool,
    },
    Send(Vec<u8>),
    Expect {
        rule: Expect,
        matcher: Matcher,
        /// Where evaluation restarts when more data is needed: the first negated expect of
        /// the chain this one ends, else itself.
        head: usize,
    },
}

/// A runnable step.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub action: Action,
    /// HAProxy's step number: position among the `tcp-check` lines + 1; 0 for the implicit
    /// first connect.
    pub id: usize,
    pub comment: Option<String>,
}

/// Turns parsed rules into steps; `tcp_check` false gives the plain connect-only check.
pub(crate) fn compile(rules: &[TcpCheckRule]) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let first_real = rules.iter().find(|r| !matches!(r, TcpCheckRule::Comment(_)));
    if !matches!(first_real, Some(TcpCheckRule::Connect { .. })) {
        steps.push(Step { action: Action::Connect { port: None, addr: None, implicit: true }, id: 0, comment: None });
    }
    // Comments attach to the run of same-kind rules that follows them (HAProxy's
    // check_proxy_tcpcheck); the implicit connect sits first and takes a leading comment.
    #[derive(PartialEq, Clone, Copy)]
    enum Kind {
        Comment,
        Connect,
        Send,
        Expect,
    }
    let mut pending: Option<String> = None;
    let mut prev = Kind::Comment;
    let mut implicit_done = steps.is_empty();
    let visit = |kind: Kind, own: Option<String>, pending: &mut Option<String>, prev: &mut Kind| {
        if kind != *prev && *prev != Kind::Comment {
            *pending = None;
        }
        *prev = kind;
        let c = own.or_else(|| pending.clone());
        if kind == Kind::Connect {
            *pending = None;
        }
        c
    };
    for (index, rule) in rules.iter().enumerate() {
        if !implicit_done {
            // The implicit connect is first in HAProxy's list, before any comment.
            implicit_done = true;
            let c = visit(Kind::Connect, None, &mut pending, &mut prev);
            if let Some(s) = steps.first_mut() {
                s.comment = c;
            }
        }
        let id = index + 1;
        match rule {
            TcpCheckRule::Comment(c) => {
                let _ = visit(Kind::Comment, None, &mut pending, &mut prev);
                pending = Some(c.clone());
            }
            TcpCheckRule::Connect { port, addr, comment } => {
                let comment = visit(Kind::Connect, comment.clone(), &mut pending, &mut prev);
                steps.push(Step { action: Action::Connect { port: *port, addr: *addr, implicit: false }, id, comment });
            }
            TcpCheckRule::Send { data, comment } | TcpCheckRule::SendBinary { data, comment } => {
                let comment = visit(Kind::Send, comment.clone(), &mut pending, &mut prev);
                steps.push(Step { action: Action::Send(data.clone()), id, comment });
            }
            TcpCheckRule::SendLf { text, comment } => {
                let comment = visit(Kind::Send, comment.clone(), &mut pending, &mut prev);
                steps.push(Step { action: Action::Send(text.as_bytes().to_vec()), id, comment });
            }
            TcpCheckRule::Expect(e) => {
                let comment = visit(Kind::Expect, e.comment.clone(), &mut pending, &mut prev);
                let matcher = match e.kind {
                    ExpectKind::String => Matcher::Bytes(e.pattern.as_bytes().to_vec()),
                    ExpectKind::Binary => Matcher::Bytes(decode_hex(&e.pattern)?),
                    ExpectKind::Rstring | ExpectKind::Rbinary => Matcher::Regex(Regex::new(&e.pattern)?),
                };
                let me = steps.len();
                let mut head = me;
                for (j, s) in steps.iter().enumerate().rev() {
                    match &s.action {
                        Action::Expect { rule, .. } => {
                            if rule.negate {
                                head = j;
                            }
                        }
                        _ => break,
                    }
                }
                steps.push(Step { action: Action::Expect { rule: e.clone(), matcher, head }, id, comment });
            }
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn mqtt_connect_rules_parse_and_decode() {
        let r = parse_tcp_check_rules(&lines(
            "tcp-check send-binary 101000\n\
             tcp-check expect binary 20020000",
        ))
        .unwrap_or_default();
        assert_eq!(r.len(), 2);
        assert_eq!(r.first(), Some(&TcpCheckRule::SendBinary { data: vec![0x10, 0x10, 0x00], comment: None }));
    }

    #[test]
    fn negated_expect_with_comment() {
        let r = parse_tcp_check_rules(&lines("tcp-check expect ! string ERR comment noerr")).unwrap_or_default();
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
        let e = parse_tcp_check_rules(&lines("tcp-check send x\ntcp-check connect port 80")).unwrap_err();
        assert!(e.starts_with("'tcp-check connect' : first step MUST also be a 'connect'"), "{e}");
    }

    #[test]
    fn bad_hex_and_unsupported_regex_are_refused() {
        assert!(parse_tcp_check_rules(&lines("tcp-check send-binary 10z0")).is_err());
        assert!(parse_tcp_check_rules(&lines("tcp-check expect rstring (a)\\1")).is_err());
        assert!(parse_tcp_check_rules(&lines("tcp-check expect rstring ^\\+OK")).is_ok());
    }

    #[test]
    fn step_ids_count_comments_and_implicit_connect_is_zero() {
        let r = parse_tcp_check_rules(&lines(
            "tcp-check comment hello\n\
             tcp-check send PING\n\
             tcp-check expect string +PONG\n\
             tcp-check expect ! string ERR comment noerr",
        ))
        .unwrap_or_default();
        let steps = compile(&r).unwrap_or_default();
        let ids: Vec<usize> = steps.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![0, 2, 3, 4]);
        let comments: Vec<Option<&str>> = steps.iter().map(|s| s.comment.as_deref()).collect();
        // The comment covers the send only: the expects that follow are another kind.
        assert_eq!(comments, vec![None, Some("hello"), None, Some("noerr")]);
    }

    #[test]
    fn negated_expect_heads_the_chain() {
        let r = parse_tcp_check_rules(&lines(
            "tcp-check send PING\n\
             tcp-check expect ! string ERR\n\
             tcp-check expect string +PONG",
        ))
        .unwrap_or_default();
        let steps = compile(&r).unwrap_or_default();
        match steps.get(3).map(|s| &s.action) {
            Some(Action::Expect { head, .. }) => assert_eq!(*head, 2),
            other => panic!("unexpected {other:?}"),
        }
    }
}
