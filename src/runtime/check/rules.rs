//! `tcp-check` rules, typed by the model, compiled into the steps the engine runs (implicit
//! first connect, comments moved onto the rules they describe, step numbers as HAProxy
//! counts them).
use std::net::IpAddr;

pub(crate) use crate::model::tcp_check::Matcher;
use crate::model::tcp_check::{Expect, TcpCheckRule};

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

/// Turns typed rules into steps; no rules gives the plain connect-only check.
pub(crate) fn compile(rules: &[TcpCheckRule]) -> Vec<Step> {
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
                let matcher = e.matcher.clone();
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
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tcp_check::parse_lines as parse_tcp_check_rules;
    use crate::model::tcp_check::tests::lines;

    #[test]
    fn step_ids_count_comments_and_implicit_connect_is_zero() {
        let r = parse_tcp_check_rules(&lines(
            "tcp-check comment hello\n\
             tcp-check send PING\n\
             tcp-check expect string +PONG\n\
             tcp-check expect ! string ERR comment noerr",
        ))
        .unwrap_or_default();
        let steps = compile(&r);
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
        let steps = compile(&r);
        match steps.get(3).map(|s| &s.action) {
            Some(Action::Expect { head, .. }) => assert_eq!(*head, 2),
            other => panic!("unexpected {other:?}"),
        }
    }
}
