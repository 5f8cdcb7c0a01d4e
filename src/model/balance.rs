//! `balance`, `hash-type` and `hash-balance-factor` as typed values, read as HAProxy's
//! `backend_parse_balance` and `hash-type` parser read them, with their messages.
use crate::grammar::{grammar, Lookup};
use crate::version::Version;

/// A layer-4 sample fetch that `balance hash` can hash at connect time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashFetch {
    Src,
    SrcPort,
    Dst,
    DstPort,
}

/// What `balance hash <expr>` hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashKey {
    Fetch(HashFetch),
    /// Any other sample expression: valid in HAProxy, not run by hapx.
    Expr(String),
}

/// A load-balancing algorithm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    #[default]
    RoundRobin,
    StaticRr,
    LeastConn,
    First,
    Source,
    /// `random` or `random(<draws>)`.
    Random {
        draws: u32,
    },
    Hash(HashKey),
    /// The HTTP algorithms (and those of later versions) the model knows but hapx's TCP
    /// runtime cannot run: `uri`, `url_param`, `hdr(name)`, `rdp-cookie`, `log-hash`, `sticky`.
    Other(String),
}

impl Algorithm {
    /// Whether the TCP runtime can run it; otherwise the line is reported unsupported.
    pub fn runnable(&self) -> bool {
        !matches!(self, Algorithm::Other(_) | Algorithm::Hash(HashKey::Expr(_)))
    }

    /// The name as `balance` spells it, for messages.
    pub fn name(&self) -> String {
        match self {
            Algorithm::RoundRobin => "roundrobin".into(),
            Algorithm::StaticRr => "static-rr".into(),
            Algorithm::LeastConn => "leastconn".into(),
            Algorithm::First => "first".into(),
            Algorithm::Source => "source".into(),
            Algorithm::Random { draws } => format!("random({draws})"),
            Algorithm::Hash(HashKey::Fetch(f)) => format!("hash {}", fetch_name(*f)),
            Algorithm::Hash(HashKey::Expr(e)) => format!("hash {e}"),
            Algorithm::Other(name) => name.clone(),
        }
    }
}

fn fetch_name(f: HashFetch) -> &'static str {
    match f {
        HashFetch::Src => "src",
        HashFetch::SrcPort => "src_port",
        HashFetch::Dst => "dst",
        HashFetch::DstPort => "dst_port",
    }
}

/// How a hash designates a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashMethod {
    /// `hash % total weight` over a weighted map of the servers.
    #[default]
    MapBased,
    /// The closest point on a ring holding many points per server.
    Consistent,
}

/// The function applied to the key's bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashFunc {
    #[default]
    Sdbm,
    Djb2,
    Wt6,
    Crc32,
    /// The key, read as a decimal integer, is the hash.
    None,
}

/// The `hash-type` directive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashType {
    pub method: HashMethod,
    pub func: HashFunc,
    /// Mix the result with a 32-bit full-avalanche hash.
    pub avalanche: bool,
}

/// The balancing directives of one backend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    pub algorithm: Algorithm,
    pub hash_type: HashType,
    /// `hash-balance-factor`; None or Some(0): no load bound.
    pub hash_balance_factor: Option<u32>,
    /// `option allbackups` (an option line: the plan fills it from the proxy's options).
    pub allbackups: bool,
}

/// A refused line: HAProxy's text and the index of the word it is about (1 = first argument).
pub type ParseError = (usize, String);

/// C's strtol with base 0 (decimal, 0x hex, 0 octal) from the start of `s`: the value and
/// the rest. Saturates instead of overflowing.
fn strtol0(s: &str) -> (i64, &str) {
    let t = s.trim_start();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..).unwrap_or("")),
        Some(b'+') => (false, t.get(1..).unwrap_or("")),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        if h.bytes().next().is_some_and(|b| b.is_ascii_hexdigit()) {
            (16, h)
        } else {
            (10, body.get(..1).unwrap_or(""))
        }
    } else if body.starts_with('0') {
        (8, body)
    } else {
        (10, body)
    };
    let len = digits.bytes().take_while(|b| char::from(*b).is_digit(radix)).count();
    if len == 0 {
        // No digits: strtol leaves the end at the start.
        return (0, s);
    }
    let mut n: i64 = 0;
    for b in digits.bytes().take(len) {
        let d = char::from(b).to_digit(radix).map_or(0, i64::from);
        n = n.saturating_mul(i64::from(radix)).saturating_add(d);
    }
    (if neg { -n } else { n }, digits.get(len..).unwrap_or(""))
}

/// `random[(<draws>)]`: HAProxy compares the first six characters only.
fn parse_random(word: &str) -> Result<u32, String> {
    let rest = word.get(6..).unwrap_or("");
    let Some(inner) = rest.strip_prefix('(').filter(|i| !i.starts_with(')')) else {
        return Ok(2);
    };
    let (draws, end) = strtol0(inner);
    match end.chars().next() {
        Some(')') => {}
        None => return Err("random : missing closing parenthesis.".into()),
        Some(c) => return Err(format!("random : unexpected character '{c}' after argument.")),
    }
    if draws < 1 {
        return Err("random : number of draws must be at least 1.".into());
    }
    Ok(u32::try_from(draws).unwrap_or(u32::MAX))
}

/// Parses the words after `balance` (at least one). Errors carry HAProxy's text after
/// `parsing [file:line] : `.
pub fn parse_algorithm(args: &[&str], version: Version) -> Result<Algorithm, ParseError> {
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    let name = arg(0);
    let bad = |text: String| Err((1, format!("balance {text}")));
    let unknown = || {
        Err((
            1,
            "balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', 'url_param', 'hdr(name)' and 'rdp-cookie(name)' options.".to_string(),
        ))
    };
    // Only what the targeted version knows (`hash`, `log-hash`, `sticky` came later).
    let base = if name.starts_with("random") {
        "random"
    } else if name.starts_with("rdp-cookie") {
        "rdp-cookie"
    } else if name.starts_with("hdr(") {
        "hdr"
    } else {
        name
    };
    if !matches!(grammar().balance(base, version), Lookup::Known(_)) {
        return unknown();
    }
    let algo = match base {
        "roundrobin" => Algorithm::RoundRobin,
        "static-rr" => Algorithm::StaticRr,
        "first" => Algorithm::First,
        "leastconn" => Algorithm::LeastConn,
        "source" => Algorithm::Source,
        "random" => match parse_random(name) {
            Ok(draws) => Algorithm::Random { draws },
            Err(e) => return bad(e),
        },
        "uri" => {
            let mut i = 1;
            while !arg(i).is_empty() {
                match arg(i) {
                    "len" | "depth" => {
                        if super::units::atoi(arg(i + 1)) <= 0 {
                            return bad(format!(
                                "uri : '{}' expects a positive integer (got '{}').",
                                arg(i),
                                arg(i + 1)
                            ));
                        }
                        i += 2;
                    }
                    "whole" | "path-only" => i += 1,
                    other => {
                        return bad(format!(
                            "uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' (got '{other}')."
                        ))
                    }
                }
            }
            Algorithm::Other("uri".into())
        }
        "url_param" => {
            if arg(1).is_empty() {
                return bad("url_param requires an URL parameter name.".into());
            }
            if !arg(2).is_empty() && arg(2) != "check_post" {
                return bad(format!("url_param only accepts 'check_post' modifier (got '{}').", arg(2)));
            }
            Algorithm::Other("url_param".into())
        }
        "hash" => {
            if arg(1).is_empty() {
                return bad("hash requires a sample expression.".into());
            }
            if !arg(2).is_empty() {
                return bad(format!("hash takes no other argument (got '{}').", arg(2)));
            }
            Algorithm::Hash(match arg(1) {
                "src" => HashKey::Fetch(HashFetch::Src),
                "src_port" => HashKey::Fetch(HashFetch::SrcPort),
                "dst" => HashKey::Fetch(HashFetch::Dst),
                "dst_port" => HashKey::Fetch(HashFetch::DstPort),
                other => HashKey::Expr(other.to_string()),
            })
        }
        "hdr" if !name.starts_with("hdr(") => return unknown(),
        "hdr" => {
            let inner = name.get(4..).unwrap_or("");
            if inner.find(')').is_none_or(|end| end == 0) {
                return bad("hdr requires an http header field name.".into());
            }
            if !arg(1).is_empty() && arg(1) != "use_domain_only" {
                return bad(format!("{name} only accepts 'use_domain_only' modifier (got '{}').", arg(1)));
            }
            Algorithm::Other(name.to_string())
        }
        "rdp-cookie" => {
            let rest = name.get(10..).unwrap_or("");
            let named = rest.strip_prefix('(').is_some_and(|r| r.find(')').is_some_and(|end| end > 0));
            if !rest.is_empty() && !named {
                return bad("rdp-cookie : missing cookie name.".into());
            }
            Algorithm::Other(name.to_string())
        }
        "log-hash" => {
            if arg(1).is_empty() {
                return bad("log-hash requires a converter list.".into());
            }
            Algorithm::Other(name.to_string())
        }
        _ => Algorithm::Other(name.to_string()),
    };
    Ok(algo)
}

/// Parses the words after `hash-type`.
pub fn parse_hash_type(args: &[&str], version: Version) -> Result<HashType, ParseError> {
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    let method = match arg(0) {
        "consistent" => HashMethod::Consistent,
        "map-based" => HashMethod::MapBased,
        "avalanche" => {
            return Err((
                1,
                "experimental feature 'hash-type avalanche' is not supported anymore, please use 'hash-type map-based sdbm avalanche' instead.".into(),
            ))
        }
        _ => return Err((1, "'hash-type' only supports 'consistent' and 'map-based'.".into())),
    };
    if arg(1).is_empty() {
        // sdbm by default; consistent hashing adds avalanche.
        return Ok(HashType { method, func: HashFunc::Sdbm, avalanche: method == HashMethod::Consistent });
    }
    let func = match arg(1) {
        "sdbm" => HashFunc::Sdbm,
        "djb2" => HashFunc::Djb2,
        "wt6" => HashFunc::Wt6,
        "crc32" => HashFunc::Crc32,
        "none" if version >= Version::new(2, 7) => HashFunc::None,
        _ => return Err((2, "'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions.".into())),
    };
    let avalanche = match arg(2) {
        "avalanche" => true,
        "" => false,
        _ => return Err((3, "'hash-type' only supports 'avalanche' as a modifier for hash functions.".into())),
    };
    Ok(HashType { method, func, avalanche })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V26: Version = Version::new(2, 6);

    fn algo(words: &[&str]) -> Result<Algorithm, ParseError> {
        parse_algorithm(words, Version::NEWEST)
    }

    #[test]
    fn every_tcp_algorithm_is_typed() {
        assert_eq!(algo(&["roundrobin"]), Ok(Algorithm::RoundRobin));
        assert_eq!(algo(&["static-rr"]), Ok(Algorithm::StaticRr));
        assert_eq!(algo(&["leastconn", "ignored"]), Ok(Algorithm::LeastConn));
        assert_eq!(algo(&["first"]), Ok(Algorithm::First));
        assert_eq!(algo(&["source"]), Ok(Algorithm::Source));
        assert_eq!(algo(&["hash", "dst_port"]), Ok(Algorithm::Hash(HashKey::Fetch(HashFetch::DstPort))));
    }

    #[test]
    fn random_draws_are_read_as_haproxy_reads_them() {
        assert_eq!(algo(&["random"]), Ok(Algorithm::Random { draws: 2 }));
        assert_eq!(algo(&["random()"]), Ok(Algorithm::Random { draws: 2 }));
        assert_eq!(algo(&["random(5)"]), Ok(Algorithm::Random { draws: 5 }));
        assert_eq!(algo(&["random(0x3)"]), Ok(Algorithm::Random { draws: 3 }));
        assert_eq!(algo(&["random(0)"]), Err((1, "balance random : number of draws must be at least 1.".into())));
        assert_eq!(algo(&["random(x)"]), Err((1, "balance random : unexpected character 'x' after argument.".into())));
        assert_eq!(algo(&["random(3"]), Err((1, "balance random : missing closing parenthesis.".into())));
    }

    #[test]
    fn http_algorithms_are_typed_but_not_runnable() {
        for words in
            [&["uri", "whole", "len", "3"][..], &["url_param", "x", "check_post"], &["hdr(host)"], &["rdp-cookie"]]
        {
            let a = algo(words).unwrap_or_default();
            assert!(!a.runnable(), "{words:?} gave {a:?}");
        }
        assert!(!algo(&["hash", "req.hdr(host)"]).unwrap_or_default().runnable());
    }

    #[test]
    fn bad_balance_lines_get_haproxys_words() {
        assert_eq!(algo(&["hash"]), Err((1, "balance hash requires a sample expression.".into())));
        assert_eq!(algo(&["hash", "src", "x"]), Err((1, "balance hash takes no other argument (got 'x').".into())));
        assert_eq!(
            algo(&["uri", "foo"]),
            Err((
                1,
                "balance uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' (got 'foo').".into()
            ))
        );
        assert_eq!(algo(&["hdr()"]), Err((1, "balance hdr requires an http header field name.".into())));
        assert_eq!(algo(&["rdp-cookie("]), Err((1, "balance rdp-cookie : missing cookie name.".into())));
        assert!(parse_algorithm(&["nope"], V26).is_err());
        assert!(parse_algorithm(&["sticky"], V26).is_err());
    }

    #[test]
    fn consistent_without_function_uses_sdbm_with_avalanche() {
        let t = parse_hash_type(&["consistent"], V26);
        assert_eq!(t, Ok(HashType { method: HashMethod::Consistent, func: HashFunc::Sdbm, avalanche: true }));
        let t = parse_hash_type(&["map-based", "wt6", "avalanche"], V26);
        assert_eq!(t, Ok(HashType { method: HashMethod::MapBased, func: HashFunc::Wt6, avalanche: true }));
    }

    #[test]
    fn bad_hash_types_get_haproxys_words() {
        let funcs = "'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions.";
        assert_eq!(parse_hash_type(&["consistent", "avalanche"], V26), Err((2, funcs.into())));
        assert_eq!(parse_hash_type(&["consistent", "none"], V26), Err((2, funcs.into())));
        assert!(parse_hash_type(&["consistent", "none"], Version::NEWEST).is_ok());
        assert_eq!(
            parse_hash_type(&["map-based", "sdbm", "slow"], V26),
            Err((3, "'hash-type' only supports 'avalanche' as a modifier for hash functions.".into()))
        );
        assert!(parse_hash_type(&["avalanche"], V26).is_err_and(|(_, t)| t.starts_with("experimental feature")));
        assert!(parse_hash_type(&[], V26).is_err());
    }
}
