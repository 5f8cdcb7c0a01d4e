//! HAProxy's address words: `[stream+|dgram+][<prefix>@]<host>[:<port>[-<port2>]]`, paths,
//! `abns@`, `fd@`, `sockpair@`, in the flavour each keyword accepts (bind, server, log,
//! peer, nameserver, source ...).
//!
//! The rules and messages are those of HAProxy 2.6's `str2sa_range`, checked against
//! haproxy 2.6.12. In particular:
//! - `$VAR` and `${VAR}` are expanded from the process environment here, even outside
//!   double quotes (the lexer leaves them alone there); messages quote the word as written.
//! - the *last* `:` (or a `]`) ends the host part; the port is read like C's `atoi`, so
//!   `:80abc` is port 80.
//! - names are resolved at parse time in every context but `server` (whose names are
//!   resolved later, after the whole configuration is read).
//!
//! Error texts are returned without the `parsing [file:line] : ` frame. Some 2.6 messages
//! end with a newline of their own, which makes 2.6 print an empty line after the alert:
//! [`AddrError::blank_line_after`] says when.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::combinator::{opt, value};
use nom::IResult;

use super::units::atoi;

/// The keyword an address word belongs to; each accepts a different set of forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrContext {
    /// `bind` in a proxy or a peers section, and the listener of the local `peer`:
    /// comma lists, port mandatory, ranges, inherited socket fds.
    Bind,
    /// `server` / `server-template`: optional port, `+N`/`-N` offsets, names resolved later.
    Server,
    /// `log`: datagram by default, `stdout`/`stderr`, raw `fd@`, `ring@`.
    Log,
    /// `peer <name> <addr>` (also `server` in a peers section): the server rules, but the
    /// name is resolved at once. A local peer's address is then also parsed as `Bind`.
    Peer,
    /// `nameserver` in `resolvers`: datagram by default, port mandatory.
    Nameserver,
    /// the `source` option of a `server` line (port ranges allowed).
    Source,
    /// the `source` keyword of a proxy (no port range).
    ProxySource,
    /// the address after `usesrc`.
    Usesrc,
    /// `dispatch` in a backend.
    Dispatch,
    /// `mailer` in a `mailers` section.
    Mailer,
    /// the `socks4` server option.
    Socks4,
}

/// What `str2sa_range` is told to accept (its `PA_O_*` flags).
#[derive(Clone, Copy, Default)]
struct Opts {
    resolve: bool,
    port_mand: bool,
    port_range: bool,
    port_ofs: bool,
    socket_fd: bool,
    raw_fd: bool,
    stream: bool,
    dgram: bool,
    default_dgram: bool,
    /// the caller wants a protocol (`proto` pointer or `PA_O_CONNECT`)
    want_proto: bool,
    /// the caller keeps unresolved names for later (`fqdn` pointer)
    fqdn: bool,
}

impl AddrContext {
    fn opts(self) -> Opts {
        let base = Opts { stream: true, want_proto: true, ..Opts::default() };
        match self {
            AddrContext::Bind => Opts { resolve: true, port_mand: true, port_range: true, socket_fd: true, ..base },
            AddrContext::Server => Opts { port_ofs: true, fqdn: true, ..base },
            AddrContext::Peer => Opts { resolve: true, port_ofs: true, fqdn: true, ..base },
            AddrContext::Log => Opts { resolve: true, raw_fd: true, dgram: true, default_dgram: true, ..base },
            AddrContext::Nameserver => {
                Opts { resolve: true, port_mand: true, dgram: true, default_dgram: true, ..base }
            }
            AddrContext::Source => Opts { resolve: true, port_range: true, ..base },
            AddrContext::ProxySource | AddrContext::Usesrc => Opts { resolve: true, ..base },
            AddrContext::Dispatch | AddrContext::Mailer | AddrContext::Socks4 => {
                Opts { resolve: true, port_mand: true, ..base }
            }
        }
    }
}

/// The address family, as fixed by the prefix or, for IP literals, by the literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// No prefix (or `ip@`, `tcp@`, `udp@`) and a name not resolved yet.
    Unspec,
    /// IPv4: `ipv4@`, `tcp4@`, `udp4@`, `quic4@`, or an IPv4 literal.
    Inet,
    /// IPv6: `ipv6@`, `tcp6@`, `udp6@`, `quic6@`, or an IPv6 literal.
    Inet6,
    /// A UNIX socket path: `/path`, `unix@`, `uxst@`, `uxdg@`.
    Unix,
    /// An abstract UNIX socket (`abns@name`).
    Abns,
    /// An inherited file descriptor (`fd@N`; `stdout`/`stderr` for `log`).
    Fd,
    /// One end of a socket pair (`sockpair@N`).
    SockPair,
    /// A `log` target that is a ring buffer (`ring@name`).
    Ring,
}

impl Family {
    /// The number 2.6 prints for the family in "unsupported protocol" messages.
    fn af_number(self) -> u32 {
        match self {
            Family::Unspec | Family::Ring => 0,
            Family::Unix | Family::Abns => 1,
            Family::Inet => 2,
            Family::Inet6 => 10,
            Family::Fd => 47,
            Family::SockPair => 48,
        }
    }
}

/// Stream or datagram, for the socket type and for the protocol carried on it (they differ
/// only for QUIC: a stream protocol over datagram sockets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockType {
    Stream,
    Dgram,
}

/// The host part.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal; `*` and the empty host are 0.0.0.0 (or `::` after `ipv6@`).
    Ip(IpAddr),
    /// A host name; see [`Addr::resolved`].
    Name(String),
    /// A UNIX socket path or an abstract name (without any unix-bind prefix).
    Path(String),
    /// A file descriptor number (`fd@`, `sockpair@`).
    Fd(i32),
    /// A ring name (`log ring@name`).
    Ring(String),
}

/// The port part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// No port (`addr` or `addr:`). A server then uses the client's destination port, a
    /// log target port 514.
    None,
    /// One port. `0` is possible where the port is optional (server), with the same
    /// meaning as no port.
    One(u16),
    /// `low-high`, low < high (an equal pair is `One`).
    Range(u16, u16),
    /// `+N` or `-N` (server): relative to the client's destination port. 2.6 does not
    /// bound N and reads it like `atoi`.
    Offset(i32),
}

/// One parsed address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    /// The address as written (for `bind`, one element of the comma list).
    pub text: String,
    pub family: Family,
    /// The socket type.
    pub ctrl: SockType,
    /// The protocol type carried (differs from `ctrl` only for QUIC).
    pub proto: SockType,
    pub host: Host,
    pub ports: PortSpec,
    /// For a `Host::Name` in a context that resolves at parse time: the first address
    /// found, as HAProxy keeps it. `None` for server names (resolved after parsing).
    pub resolved: Option<IpAddr>,
}

/// What went wrong, one variant per 2.6 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrErrorKind {
    /// `'<word>' resolves to an empty address (environment variable missing?)`
    EmptyAfterEnv,
    /// `file descriptor '<x>' is not a valid integer in '<word>'`
    FdNotInteger,
    /// `cannot use file descriptor '<n>' : <strerror>.`
    FdUnusable,
    /// `a file descriptor is not acceptable here in '<word>'`
    FdNotAcceptable,
    /// `socket path '<word>' too long (max <n>)`
    PathTooLong,
    /// `port specification not permitted here in '<word>'`
    PortNotPermitted,
    /// `missing port specification in '<word>'`
    MissingPort,
    /// `port range not permitted here in '<word>'`
    PortRangeNotPermitted,
    /// `invalid port '<port>'`
    InvalidPort,
    /// `invalid port range '<a>-<b>'`
    InvalidPortRange,
    /// `port offset not permitted here in '<word>'`
    PortOffsetNotPermitted,
    /// `invalid character '<c>' in port number '<port>' in '<word>'`
    InvalidPortChar,
    /// `invalid address: '<host>' in '<word>'` (also an unresolvable name)
    InvalidAddress,
    /// `stream-type address not acceptable in '<word>'`
    StreamNotAcceptable,
    /// `dgram-type address not acceptable in '<word>'`
    DgramNotAcceptable,
    /// `unsupported <type> protocol for <type> family <n> address '<word>'[; QUIC ...]`
    UnsupportedProtocol,
}

/// A refused address, with 2.6's exact text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrError {
    pub kind: AddrErrorKind,
    text: String,
    /// 2.6's message ends with its own newline here.
    newline: bool,
}

impl AddrError {
    fn new(kind: AddrErrorKind, text: String, newline: bool) -> AddrError {
        AddrError { kind, text, newline }
    }

    /// The message as 2.6 words it, without any trailing newline.
    pub fn message(&self) -> String {
        self.text.clone()
    }

    /// True when 2.6's message carries its own newline, so that an alert that prints it
    /// as is (`server`, `peer`, `log`, `nameserver`, proxy `source`, `dispatch`, `mailer`,
    /// `usesrc`) is followed by an empty line. `bind` strips that newline first.
    pub fn blank_line_after(&self) -> bool {
        self.newline
    }

    /// The raw text 2.6 builds, trailing newline included.
    pub fn raw(&self) -> String {
        if self.newline {
            format!("{}\n", self.text)
        } else {
            self.text.clone()
        }
    }
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for AddrError {}

/// What parsing needs from the world: the environment, name resolution and the state of
/// inherited file descriptors. [`SystemEnv`] is the real one; tests use their own.
pub trait AddrEnv {
    /// An environment variable (as `getenv`).
    fn var(&self, name: &str) -> Option<String>;
    /// Addresses for a host name, in getaddrinfo order, restricted to `family` when it is
    /// `Inet` or `Inet6`. Empty when the name does not resolve.
    fn lookup(&self, name: &str, family: Family) -> Vec<IpAddr>;
    /// `None` when `fd` is an open socket, else the `strerror` text `getsockname` gives.
    fn fd_error(&self, fd: i32) -> Option<String>;
    /// The global `unix-bind prefix`, which shortens the longest bind path allowed.
    fn unix_bind_prefix(&self) -> Option<String> {
        None
    }
}

/// The process itself: `std::env`, getaddrinfo (through `ToSocketAddrs`, so `/etc/hosts`
/// then DNS as the system is set up), and `/proc/self/fd` for inherited descriptors.
#[derive(Clone, Debug, Default)]
pub struct SystemEnv {
    pub unix_bind_prefix: Option<String>,
}

impl AddrEnv for SystemEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn lookup(&self, name: &str, family: Family) -> Vec<IpAddr> {
        system_lookup(name, family)
    }

    fn fd_error(&self, fd: i32) -> Option<String> {
        // Without unsafe code getsockname is out of reach; /proc tells the same two cases.
        match std::fs::read_link(format!("/proc/self/fd/{fd}")) {
            Err(_) => Some("Bad file descriptor".to_string()),
            Ok(target) if target.to_string_lossy().starts_with("socket:") => None,
            Ok(_) => Some("Socket operation on non-socket".to_string()),
        }
    }

    fn unix_bind_prefix(&self) -> Option<String> {
        self.unix_bind_prefix.clone()
    }
}

fn system_lookup(name: &str, family: Family) -> Vec<IpAddr> {
    let found = match (name, 0u16).to_socket_addrs() {
        Ok(it) => it.map(|sa| sa.ip()).collect::<Vec<_>>(),
        Err(_) => return Vec::new(),
    };
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in found {
        let keep = match family {
            Family::Inet => ip.is_ipv4(),
            Family::Inet6 => ip.is_ipv6(),
            _ => true,
        };
        if keep && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// Parses an address word for `ctx` as 2.6 does at configuration time, resolving names
/// where 2.6 resolves them and looking at inherited fds, with the real process
/// environment. A `bind` word may hold a comma-separated list: one `Addr` each.
pub fn parse_addr(word: &str, ctx: AddrContext) -> Result<Vec<Addr>, AddrError> {
    parse_addr_in(word, ctx, &SystemEnv::default())
}

/// [`parse_addr`] with an explicit environment.
pub fn parse_addr_in(word: &str, ctx: AddrContext, env: &dyn AddrEnv) -> Result<Vec<Addr>, AddrError> {
    if ctx == AddrContext::Bind {
        // str2listener: split on commas first, stop at an empty tail.
        let mut out = Vec::new();
        let mut rest = Some(word);
        while let Some(r) = rest.filter(|r| !r.is_empty()) {
            let (one, next) = match r.split_once(',') {
                Some((a, b)) => (a, Some(b)),
                None => (r, None),
            };
            out.push(parse_one(one, ctx, env)?);
            rest = next;
        }
        return Ok(out);
    }
    if ctx == AddrContext::Log {
        if let Some(ring) = word.strip_prefix("ring@") {
            return Ok(vec![Addr {
                text: word.to_string(),
                family: Family::Ring,
                ctrl: SockType::Dgram,
                proto: SockType::Dgram,
                host: Host::Ring(ring.to_string()),
                ports: PortSpec::None,
                resolved: None,
            }]);
        }
        let aliased = match word {
            "stdout" => "fd@1",
            "stderr" => "fd@2",
            w => w,
        };
        return parse_one(aliased, ctx, env).map(|a| vec![a]);
    }
    parse_one(word, ctx, env).map(|a| vec![a])
}

/// `env_expand`: `$NAME` and `${NAME}` anywhere in the word; a missing variable is empty.
fn env_expand(word: &str, env: &dyn AddrEnv) -> String {
    let b = word.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while let Some(off) = word.get(i..).and_then(|s| s.find('$')) {
        out.push_str(word.get(i..i + off).unwrap_or(""));
        let mut beg = i + off + 1;
        let braced = b.get(beg) == Some(&b'{');
        if braced {
            beg += 1;
        }
        let mut end = beg;
        while b.get(end).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            end += 1;
        }
        if let Some(v) = word.get(beg..end).and_then(|n| env.var(n)) {
            out.push_str(&v);
        }
        i = if braced && b.get(end) == Some(&b'}') { end + 1 } else { end };
    }
    out.push_str(word.get(i..).unwrap_or(""));
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Prefix {
    Unix,
    Uxdg,
    Uxst,
    Abns,
    Ip,
    Ipv4,
    Ipv6,
    Tcp4,
    Udp4,
    Tcp6,
    Udp6,
    Tcp,
    Udp,
    Quic4,
    Quic6,
    Fd,
    SockPair,
}

/// `[stream+|dgram+][prefix@]`, in the order 2.6 tries them.
#[allow(clippy::type_complexity)]
fn prefixes(i: &str) -> IResult<&str, (Option<SockType>, Option<Prefix>)> {
    let (i, st) = opt(alt((value(SockType::Stream, tag("stream+")), value(SockType::Dgram, tag("dgram+")))))(i)?;
    let (i, p) = opt(alt((
        value(Prefix::Unix, tag("unix@")),
        value(Prefix::Uxdg, tag("uxdg@")),
        value(Prefix::Uxst, tag("uxst@")),
        value(Prefix::Abns, tag("abns@")),
        value(Prefix::Ip, tag("ip@")),
        value(Prefix::Ipv4, tag("ipv4@")),
        value(Prefix::Ipv6, tag("ipv6@")),
        value(Prefix::Tcp4, tag("tcp4@")),
        value(Prefix::Udp4, tag("udp4@")),
        value(Prefix::Tcp6, tag("tcp6@")),
        value(Prefix::Udp6, tag("udp6@")),
        value(Prefix::Tcp, tag("tcp@")),
        value(Prefix::Udp, tag("udp@")),
        value(Prefix::Quic4, tag("quic4@")),
        value(Prefix::Quic6, tag("quic6@")),
        value(Prefix::Fd, tag("fd@")),
        value(Prefix::SockPair, tag("sockpair@")),
    )))(i)?;
    Ok((i, (st, p)))
}

/// C's `strtol(s, &end, 10)` truncated to `int`: the value and whether the whole string
/// was consumed with at least one digit.
fn strtol_full(s: &str) -> (i32, bool) {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = b.iter().skip(i).take_while(|c| c.is_ascii_digit()).count();
    (atoi(s), digits > 0 && i + digits == b.len())
}

fn parse_one(word: &str, ctx: AddrContext, env: &dyn AddrEnv) -> Result<Addr, AddrError> {
    use AddrErrorKind as K;
    let o = ctx.opts();
    let expanded = env_expand(word, env);
    if expanded.is_empty() {
        return Err(AddrError::new(
            K::EmptyAfterEnv,
            format!("'{word}' resolves to an empty address (environment variable missing?)"),
            true,
        ));
    }
    let (mut proto, mut ctrl) = if o.dgram && (!o.stream || o.default_dgram) {
        (SockType::Dgram, SockType::Dgram)
    } else {
        (SockType::Stream, SockType::Stream)
    };
    let (rest, (st, prefix)) = match prefixes(&expanded) {
        Ok(v) => v,
        Err(_) => (expanded.as_str(), (None, None)),
    };
    if let Some(t) = st {
        proto = t;
        ctrl = t;
    }
    let mut both = |t: SockType| {
        proto = t;
        ctrl = t;
    };
    let family = match prefix {
        Some(Prefix::Unix) => Family::Unix,
        Some(Prefix::Uxdg) => {
            both(SockType::Dgram);
            Family::Unix
        }
        Some(Prefix::Uxst) => {
            both(SockType::Stream);
            Family::Unix
        }
        Some(Prefix::Abns) => Family::Abns,
        Some(Prefix::Ip) => Family::Unspec,
        Some(Prefix::Ipv4) => Family::Inet,
        Some(Prefix::Ipv6) => Family::Inet6,
        Some(Prefix::Tcp4) => {
            both(SockType::Stream);
            Family::Inet
        }
        Some(Prefix::Udp4) => {
            both(SockType::Dgram);
            Family::Inet
        }
        Some(Prefix::Tcp6) => {
            both(SockType::Stream);
            Family::Inet6
        }
        Some(Prefix::Udp6) => {
            both(SockType::Dgram);
            Family::Inet6
        }
        Some(Prefix::Tcp) => {
            both(SockType::Stream);
            Family::Unspec
        }
        Some(Prefix::Udp) => {
            both(SockType::Dgram);
            Family::Unspec
        }
        Some(Prefix::Quic4) => {
            proto = SockType::Dgram;
            ctrl = SockType::Stream;
            Family::Inet
        }
        Some(Prefix::Quic6) => {
            proto = SockType::Dgram;
            ctrl = SockType::Stream;
            Family::Inet6
        }
        Some(Prefix::Fd) => Family::Fd,
        Some(Prefix::SockPair) => Family::SockPair,
        None if rest.starts_with('/') => Family::Unix,
        None => Family::Unspec,
    };

    let mut addr = Addr {
        text: word.to_string(),
        family,
        ctrl,
        proto,
        host: Host::Name(String::new()),
        ports: PortSpec::None,
        resolved: None,
    };

    match family {
        Family::SockPair | Family::Fd => {
            let (fd, ok) = strtol_full(rest);
            if rest.is_empty() || fd < 0 || !ok {
                return Err(AddrError::new(
                    K::FdNotInteger,
                    format!("file descriptor '{rest}' is not a valid integer in '{word}'"),
                    true,
                ));
            }
            addr.host = Host::Fd(fd);
            if family == Family::SockPair || o.socket_fd {
                if let Some(why) = env.fd_error(fd) {
                    return Err(AddrError::new(
                        K::FdUnusable,
                        format!("cannot use file descriptor '{fd}' : {why}."),
                        true,
                    ));
                }
            } else if !o.raw_fd {
                return Err(AddrError::new(
                    K::FdNotAcceptable,
                    format!("a file descriptor is not acceptable here in '{word}'"),
                    true,
                ));
            }
        }
        Family::Unix | Family::Abns => {
            let abstract_ns = family == Family::Abns;
            let pfx_len = match (ctx, abstract_ns) {
                (AddrContext::Bind, false) => env.unix_bind_prefix().map_or(0, |p| p.len()),
                _ => 0,
            };
            // sun_path holds 108 bytes; 2.6 keeps room for ".<pid>.<bak|tmp>" on paths.
            let max = if abstract_ns { 107 } else { 107 - (pfx_len + 10) as i64 };
            if rest.len() as i64 > max {
                return Err(AddrError::new(K::PathTooLong, format!("socket path '{word}' too long (max {max})"), true));
            }
            addr.host = Host::Path(rest.to_string());
        }
        _ => parse_ip_part(rest, word, &o, env, &mut addr)?,
    }

    if addr.ctrl == SockType::Stream && !o.stream {
        return Err(AddrError::new(
            K::StreamNotAcceptable,
            format!("stream-type address not acceptable in '{word}'"),
            true,
        ));
    }
    if addr.ctrl == SockType::Dgram && !o.dgram {
        return Err(AddrError::new(
            K::DgramNotAcceptable,
            format!("dgram-type address not acceptable in '{word}'"),
            true,
        ));
    }
    if o.want_proto {
        let unresolved_name = matches!(addr.host, Host::Name(_)) && addr.resolved.is_none();
        let known = matches!(
            (addr.family, addr.proto, addr.ctrl),
            (Family::Inet | Family::Inet6 | Family::Unix | Family::Abns, SockType::Stream, SockType::Stream)
                | (Family::Inet | Family::Inet6 | Family::Unix | Family::Abns, SockType::Dgram, SockType::Dgram)
                | (Family::SockPair, SockType::Stream, SockType::Stream)
        );
        // An inherited fd takes the family of the socket, unknown here.
        if !known && !unresolved_name && addr.family != Family::Fd {
            let name = |t: SockType| match t {
                SockType::Dgram => "datagram",
                SockType::Stream => "stream",
            };
            let quic = if addr.ctrl == SockType::Stream && addr.proto == SockType::Dgram {
                "; QUIC is not compiled in if this is what you were looking for."
            } else {
                ""
            };
            return Err(AddrError::new(
                K::UnsupportedProtocol,
                format!(
                    "unsupported {} protocol for {} family {} address '{word}'{quic}",
                    name(addr.ctrl),
                    name(addr.proto),
                    addr.family.af_number()
                ),
                false,
            ));
        }
    }
    Ok(addr)
}

/// The IPv4/IPv6/name branch: host and port split, port checks, address parsing.
fn parse_ip_part(rest: &str, word: &str, o: &Opts, env: &dyn AddrEnv, addr: &mut Addr) -> Result<(), AddrError> {
    use AddrErrorKind as K;
    // The last ':' or ']' decides: a ':' is the port separator. With an empty host after
    // a prefix, 2.6 looks at the prefix's last character ('@' or '+'), which is neither.
    let sep = rest.rfind([':', ']']);
    let (host, port_text) = match sep {
        Some(p) if rest.as_bytes().get(p) == Some(&b':') => {
            (rest.get(..p).unwrap_or(""), rest.get(p + 1..).unwrap_or(""))
        }
        _ => {
            if o.port_mand {
                return Err(AddrError::new(K::MissingPort, format!("missing port specification in '{word}'"), false));
            }
            (rest, "")
        }
    };
    let pb = port_text.as_bytes();
    match pb.first() {
        Some(c) if c.is_ascii_digit() => {
            let (p1, p2) = match port_text.split_once('-') {
                Some((a, b)) => {
                    if !o.port_range {
                        return Err(AddrError::new(
                            K::PortRangeNotPermitted,
                            format!("port range not permitted here in '{word}'"),
                            false,
                        ));
                    }
                    (a, b)
                }
                None => (port_text, port_text),
            };
            let (lo, hi) = (atoi(p1), atoi(p2));
            let min = i32::from(o.port_mand);
            for (v, t) in [(lo, p1), (hi, p2)] {
                if v < min || v > 65535 {
                    return Err(AddrError::new(K::InvalidPort, format!("invalid port '{t}'"), false));
                }
            }
            if lo > hi {
                return Err(AddrError::new(K::InvalidPortRange, format!("invalid port range '{lo}-{hi}'"), false));
            }
            // Both are within 0..=65535 here.
            let (lo, hi) = (lo as u16, hi as u16);
            addr.ports = if lo == hi { PortSpec::One(lo) } else { PortSpec::Range(lo, hi) };
        }
        Some(b'-' | b'+') => {
            if !o.port_ofs {
                return Err(AddrError::new(
                    K::PortOffsetNotPermitted,
                    format!("port offset not permitted here in '{word}'"),
                    false,
                ));
            }
            let n = atoi(port_text.get(1..).unwrap_or(""));
            addr.ports = PortSpec::Offset(if pb.first() == Some(&b'-') { n.wrapping_neg() } else { n });
        }
        Some(_) => {
            let ch = port_text.chars().next().unwrap_or('\0');
            return Err(AddrError::new(
                K::InvalidPortChar,
                format!("invalid character '{ch}' in port number '{port_text}' in '{word}'"),
                true,
            ));
        }
        None if o.port_mand => {
            return Err(AddrError::new(K::MissingPort, format!("missing port specification in '{word}'"), false));
        }
        None => {}
    }

    if let Some(ip) = ip_literal(host, addr.family) {
        addr.family = if ip.is_ipv4() { Family::Inet } else { Family::Inet6 };
        addr.host = Host::Ip(ip);
        return Ok(());
    }
    addr.host = Host::Name(host.to_string());
    if o.resolve {
        // HAProxy keeps the first address getaddrinfo gives.
        if let Some(ip) = resolve_host(host, addr.family, env).first() {
            addr.family = if ip.is_ipv4() { Family::Inet } else { Family::Inet6 };
            addr.resolved = Some(*ip);
            return Ok(());
        }
    } else if o.fqdn {
        return Ok(());
    }
    Err(AddrError::new(K::InvalidAddress, format!("invalid address: '{host}' in '{word}'"), true))
}

/// `str2ip2` without resolution: brackets, `::`, `*` or empty, then the IP literals the
/// forced family allows.
fn ip_literal(text: &str, family: Family) -> Option<IpAddr> {
    let s = if text.starts_with('[') {
        // "[::]" is the shortest; the inner text must fit HAProxy's 48-byte buffer.
        if text.len() < 4 || text.len() >= 48 || !text.ends_with(']') {
            return None;
        }
        text.get(1..text.len() - 1)?
    } else {
        text
    };
    let v4 = matches!(family, Family::Unspec | Family::Inet);
    let v6 = matches!(family, Family::Unspec | Family::Inet6);
    if s == "::" {
        return v6.then_some(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }
    if s.is_empty() || s == "*" {
        return Some(if family == Family::Inet6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        });
    }
    if v6 {
        if let Ok(ip) = s.parse::<Ipv6Addr>() {
            return Some(IpAddr::V6(ip));
        }
    }
    if v4 {
        if let Ok(ip) = s.parse::<Ipv4Addr>() {
            return Some(IpAddr::V4(ip));
        }
    }
    None
}

/// 2.6's check of a name before asking the resolver: at most 255 bytes, labels of
/// letters, digits, `-` and `_`, at most 63 bytes each.
pub fn hostname_is_valid(name: &str) -> bool {
    if name.len() > 255 {
        return false;
    }
    name.split('.')
        .all(|label| label.len() <= 63 && label.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
}

/// `str2ip2` with resolution: literals first, then the name check, then the resolver.
fn resolve_host(host: &str, family: Family, env: &dyn AddrEnv) -> Vec<IpAddr> {
    if let Some(ip) = ip_literal(host, family) {
        return vec![ip];
    }
    let inner = match host.strip_prefix('[') {
        Some(h) => match h.strip_suffix(']') {
            Some(i) if host.len() >= 4 && host.len() < 48 => i,
            _ => return Vec::new(),
        },
        None => host,
    };
    if !hostname_is_valid(inner) {
        return Vec::new();
    }
    env.lookup(inner, family)
}

/// A failed resolution of a server name (after parsing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveError {
    pub name: String,
}

impl ResolveError {
    /// The fatal 2.6 text (no `init-addr none` and no resolvers).
    pub fn message(&self) -> String {
        server_unresolved_alert(&self.name)
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ResolveError {}

/// Resolves an address like HAProxy at load time: IP literals, then (for a valid host name)
/// `/etc/hosts` and DNS through getaddrinfo, keeping the family a prefix forced. HAProxy
/// uses the first result. Paths, fds and rings are refused (they have no socket address).
pub fn resolve(addr: &Addr) -> Result<Vec<SocketAddr>, ResolveError> {
    resolve_in(addr, &SystemEnv::default())
}

/// [`resolve`] with an explicit environment.
pub fn resolve_in(addr: &Addr, env: &dyn AddrEnv) -> Result<Vec<SocketAddr>, ResolveError> {
    let port = match addr.ports {
        PortSpec::One(p) | PortSpec::Range(p, _) => p,
        PortSpec::None | PortSpec::Offset(_) => 0,
    };
    let ips = match &addr.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(n) => match addr.resolved {
            Some(ip) => vec![ip],
            None => resolve_host(n, addr.family, env),
        },
        Host::Path(_) | Host::Ring(_) | Host::Fd(_) => Vec::new(),
    };
    if ips.is_empty() {
        let name = match &addr.host {
            Host::Name(n) | Host::Path(n) | Host::Ring(n) => n.clone(),
            Host::Ip(ip) => ip.to_string(),
            Host::Fd(fd) => fd.to_string(),
        };
        return Err(ResolveError { name });
    }
    Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
}

// ---- Messages framed as each keyword prints them -----------------------------------------

/// `bind` in a proxy: `parsing [f:l] : 'bind' : <msg>`, never followed by an empty line
/// (2.6 passes the message through `indent_msg`, which drops a single trailing newline).
pub fn bind_error_message(err: &AddrError) -> String {
    format!("'bind' : {}", err.message())
}

/// `bind` in a peers section, or the local `peer` line (`keyword` = `bind`/`peer`,
/// `arg` = its first argument): 2.6 strips the message's newline there, so no empty line.
pub fn peers_listener_error_message(keyword: &str, arg: &str, err: &AddrError) -> String {
    format!("'{keyword} {arg}' : {}", err.message())
}

/// `server` (and a remote `peer`): the bare message, framed by the caller as
/// `[f:l] : 'server <proxy>/<name>' : <msg>`. (For a `peer` line 2.6 prints the proxy as
/// `(null)`: `'server (null)/<name>'`.)
pub fn server_error_message(err: &AddrError) -> String {
    err.message()
}

/// The frame 2.6 puts before a server's messages: `'server <proxy>/<name>'`.
pub fn server_context(proxy: Option<&str>, name: &str) -> String {
    format!("'server {}/{name}'", proxy.unwrap_or("(null)"))
}

/// `log`: `parsing [f:l] : log : <msg>`.
pub fn log_error_message(err: &AddrError) -> String {
    format!("log : {}", err.message())
}

/// `nameserver <name> <addr>`: `parsing [f:l] : 'nameserver <name>' : <msg>`.
pub fn nameserver_error_message(name: &str, err: &AddrError) -> String {
    format!("'nameserver {name}' : {}", err.message())
}

/// Proxy `source`, `mailer <name>`: `parsing [f:l] : '<kw> <arg1>' : <msg>`.
pub fn keyword_arg_error_message(keyword: &str, arg: &str, err: &AddrError) -> String {
    format!("'{keyword} {arg}' : {}", err.message())
}

/// `dispatch`: `parsing [f:l] : 'dispatch' : <msg>`.
pub fn dispatch_error_message(err: &AddrError) -> String {
    format!("'dispatch' : {}", err.message())
}

/// The error text of the server options `source` and `socks4` (`option` is the option
/// word), raw as 2.6 builds it, trailing newline(s) included.
pub fn server_option_error_raw(option: &str, word: &str, err: &AddrError) -> String {
    format!("'{option} {word}' : {}\n", err.raw())
}

/// The message 2.6 prints (after the `[f:l] : 'server b/s' : ` frame) when the server
/// option `source` or `socks4` is refused: the raw text through `indent_msg`, then a dot.
/// A one-line text stays on the line (`'socks4 1.2.3.4' : missing port specification in
/// '1.2.3.4'.`); a text with an inner newline becomes indented lines
/// (`\n  'source 1.2.3.4:abc' : invalid character ...\n  \n.`).
pub fn server_option_error_message(option: &str, word: &str, err: &AddrError) -> String {
    format!("{}.", indent_msg(&server_option_error_raw(option, word, err), 2))
}

/// The two alerts 2.6 prints when the address after `usesrc` is refused: the first framed
/// by the server (`[f:l] : 'server b/s' : `, then an empty line when
/// [`AddrError::blank_line_after`]), the second with no location at all.
pub fn usesrc_error_messages(word: &str, err: &AddrError) -> (String, String) {
    (format!("'usesrc {word}' : {}", err.message()), "error encountered while processing 'usesrc'.".to_string())
}

/// HAProxy's `indent_msg`: a text without newline, or with only one at its end (then
/// dropped), stays as it is; otherwise leading newlines are dropped and every line is
/// put on a new line after `level` spaces.
pub fn indent_msg(msg: &str, level: usize) -> String {
    let lf = msg.matches('\n').count();
    if lf == 0 {
        return msg.to_string();
    }
    if lf == 1 && msg.ends_with('\n') {
        return msg.trim_end_matches('\n').to_string();
    }
    let pad = " ".repeat(level);
    let mut out = String::new();
    let mut rest = msg.trim_start_matches('\n');
    while !rest.is_empty() {
        out.push('\n');
        out.push_str(&pad);
        // Each line takes at least one character, even a newline of an empty line.
        let first_len = rest.chars().next().map_or(0, char::len_utf8);
        let end = rest.get(first_len..).and_then(|r| r.find('\n')).map_or(rest.len(), |p| p + first_len);
        out.push_str(rest.get(..end).unwrap_or(""));
        rest = rest.get(end..).unwrap_or("");
        rest = rest.strip_prefix('\n').unwrap_or(rest);
    }
    out
}

/// `'server' expects <name> and <addr>[:<port>] as arguments.` (also for a word that
/// the lexer expanded to nothing); `keyword` is `server` or `peer`... as written.
pub fn server_missing_addr_message(keyword: &str) -> String {
    format!("'{keyword}' expects <name> and <addr>[:<port>] as arguments.")
}

/// The fatal alert when a server name does not resolve after parsing:
/// `[f:l] : 'server b/s' : could not resolve address 'name'.`
pub fn server_unresolved_alert(name: &str) -> String {
    format!("could not resolve address '{name}'.")
}

/// The warning when `init-addr` ends with `none` (or resolvers are set, or `-dr`):
/// `could not resolve address 'name', disabling server.`
pub fn server_unresolved_disabled_warning(name: &str) -> String {
    format!("could not resolve address '{name}', disabling server.")
}

/// The warning when `init-addr` falls back to the configured IP.
pub fn server_unresolved_fallback_warning(name: &str) -> String {
    format!("could not resolve address '{name}', falling back to configured address.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A world with fixed variables and a hosts table, where fds 0..=2 are sockets
    /// only if listed.
    #[derive(Default)]
    struct Fake {
        vars: HashMap<String, String>,
        hosts: Vec<(&'static str, IpAddr)>,
        sockets: Vec<i32>,
        open: Vec<i32>,
    }

    impl AddrEnv for Fake {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn lookup(&self, name: &str, family: Family) -> Vec<IpAddr> {
            self.hosts
                .iter()
                .filter(|(n, ip)| {
                    *n == name
                        && match family {
                            Family::Inet => ip.is_ipv4(),
                            Family::Inet6 => ip.is_ipv6(),
                            _ => true,
                        }
                })
                .map(|(_, ip)| *ip)
                .collect()
        }
        fn fd_error(&self, fd: i32) -> Option<String> {
            if self.sockets.contains(&fd) {
                None
            } else if self.open.contains(&fd) {
                Some("Socket operation on non-socket".into())
            } else {
                Some("Bad file descriptor".into())
            }
        }
    }

    fn world() -> Fake {
        Fake {
            vars: HashMap::from([("PORT".to_string(), "8080".to_string())]),
            hosts: vec![
                ("localhost", "127.0.0.1".parse().unwrap()),
                ("localhost", "::1".parse().unwrap()),
                ("v6only", "::2".parse().unwrap()),
            ],
            sockets: vec![7],
            open: vec![0, 1, 2],
        }
    }

    fn ok(word: &str, ctx: AddrContext) -> Vec<Addr> {
        parse_addr_in(word, ctx, &world()).unwrap_or_else(|e| panic!("{word}: {e}"))
    }

    fn one(word: &str, ctx: AddrContext) -> Addr {
        ok(word, ctx).remove(0)
    }

    fn err(word: &str, ctx: AddrContext) -> AddrError {
        match parse_addr_in(word, ctx, &world()) {
            Ok(a) => panic!("{word} accepted: {a:?}"),
            Err(e) => e,
        }
    }

    fn ip(s: &str) -> Host {
        Host::Ip(s.parse().unwrap())
    }

    use AddrContext::*;

    #[test]
    fn bind_accepts_ipv4_forms_and_any() {
        let a = one("127.0.0.1:18601", Bind);
        assert_eq!((a.family, a.host, a.ports), (Family::Inet, ip("127.0.0.1"), PortSpec::One(18601)));
        assert_eq!(one(":18602", Bind).host, ip("0.0.0.0"));
        assert_eq!(one("*:18603", Bind).host, ip("0.0.0.0"));
        assert_eq!(one("0.0.0.0:18604", Bind).host, ip("0.0.0.0"));
    }

    #[test]
    fn bind_accepts_ipv6_with_or_without_brackets_last_colon_is_the_port() {
        for (w, h, p) in [
            (":::18605", "::", 18605),
            ("[::]:18606", "::", 18606),
            ("::1:18607", "::1", 18607),
            ("[::1]:18608", "::1", 18608),
        ] {
            let a = one(w, Bind);
            assert_eq!((a.family, a.host, a.ports), (Family::Inet6, ip(h), PortSpec::One(p)), "{w}");
        }
        assert_eq!(one("ipv6@*:80", Bind).host, ip("::"));
    }

    #[test]
    fn bind_resolves_localhost_at_parse_time() {
        let a = one("localhost:18625", Bind);
        assert_eq!(a.host, Host::Name("localhost".into()));
        assert_eq!(a.resolved, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(a.family, Family::Inet);
        let a = one("ipv6@localhost:1", Bind);
        assert_eq!(a.resolved, Some("::1".parse().unwrap()));
    }

    #[test]
    fn bind_without_port_is_missing_port_specification() {
        let e = err("127.0.0.1", Bind);
        assert_eq!(e.kind, AddrErrorKind::MissingPort);
        assert_eq!(bind_error_message(&e), "'bind' : missing port specification in '127.0.0.1'");
        assert!(!e.blank_line_after());
        assert_eq!(err("[::1]", Bind).message(), "missing port specification in '[::1]'");
        assert_eq!(err("ipv4@", Bind).message(), "missing port specification in 'ipv4@'");
    }

    #[test]
    fn unexpanded_env_var_outside_quotes_reads_as_missing_port() {
        // corpus 0057/0058: `bind *:$PORT` with the variable unset; the message quotes the
        // word as written, the expansion happens inside the address parser.
        let e = err("*:${MQTT_PORT}", Bind);
        assert_eq!(bind_error_message(&e), "'bind' : missing port specification in '*:${MQTT_PORT}'");
        assert_eq!(err("*:$NOPE", Bind).message(), "missing port specification in '*:$NOPE'");
        // corpus 0071: the lexer already expanded `*:"${PORT}"` to `*:`
        assert_eq!(err("*:", Bind).message(), "missing port specification in '*:'");
        // a variable that is set works
        assert_eq!(one("*:$PORT", Bind).ports, PortSpec::One(8080));
        assert_eq!(one("*:${PORT}", Bind).ports, PortSpec::One(8080));
    }

    #[test]
    fn bind_port_zero_or_too_big_is_invalid_port() {
        assert_eq!(bind_error_message(&err(":0", Bind)), "'bind' : invalid port '0'");
        assert_eq!(err(":70000", Bind).message(), "invalid port '70000'");
        assert_eq!(err(":80-70", Bind).message(), "invalid port range '80-70'");
        assert_eq!(err(":80-", Bind).message(), "invalid port ''");
        // junk after the digits is ignored, as atoi does
        assert_eq!(one(":80abc", Bind).ports, PortSpec::One(80));
        // atoi truncates to 32 bits
        assert_eq!(one(":4294967376", Bind).ports, PortSpec::One(80));
    }

    #[test]
    fn bind_port_range_and_comma_list() {
        assert_eq!(one(":18612-18614", Bind).ports, PortSpec::Range(18612, 18614));
        let v = ok("127.0.0.1:1,[::1]:2,/tmp/s", Bind);
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].host, ip("::1"));
        assert_eq!(v[2].host, Host::Path("/tmp/s".into()));
        // a trailing comma ends the list; an empty element in the middle is an error
        assert_eq!(ok("1.2.3.4:80,", Bind).len(), 1);
        let e = err("1.2.3.4:80,,1.2.3.4:81", Bind);
        assert_eq!(e.message(), "'' resolves to an empty address (environment variable missing?)");
        assert!(e.blank_line_after());
    }

    #[test]
    fn invalid_character_in_port() {
        let e = err(":abc", Bind);
        assert_eq!(e.message(), "invalid character 'a' in port number 'abc' in ':abc'");
        assert!(e.blank_line_after());
        assert_eq!(
            server_error_message(&err("1.2.3.4:abc", Server)),
            "invalid character 'a' in port number 'abc' in '1.2.3.4:abc'"
        );
    }

    #[test]
    fn family_prefixes_on_bind() {
        assert_eq!(one("ipv4@1.2.3.4:80", Bind).family, Family::Inet);
        assert_eq!(one("ipv6@::1:80", Bind).family, Family::Inet6);
        assert_eq!(one("ip@::1:80", Bind).family, Family::Inet6);
        for w in ["tcp@:80", "tcp4@:80", "tcp6@:::80", "stream+ipv4@:80"] {
            assert_eq!(one(w, Bind).ctrl, SockType::Stream, "{w}");
        }
        let e = err("ipv6@1.2.3.4:80", Bind);
        assert_eq!(e.message(), "invalid address: '1.2.3.4' in 'ipv6@1.2.3.4:80'");
        assert_eq!(err("ipv4@v6only:80", Bind).kind, AddrErrorKind::InvalidAddress);
    }

    #[test]
    fn unix_and_abstract_sockets() {
        for (w, p) in [("/var/run/s.sock", "/var/run/s.sock"), ("unix@rel.sock", "rel.sock"), ("uxst@/x", "/x")] {
            let a = one(w, Bind);
            assert_eq!((a.family, a.host), (Family::Unix, Host::Path(p.into())), "{w}");
        }
        let a = one("abns@name", Bind);
        assert_eq!((a.family, a.host), (Family::Abns, Host::Path("name".into())));
        assert_eq!(one("/tmp/s", Server).family, Family::Unix);
        assert_eq!(one("abns@x", Server).family, Family::Abns);
        let long = format!("/{}", "a".repeat(97));
        assert_eq!(err(&long, Bind).message(), format!("socket path '{long}' too long (max 97)"));
        assert_eq!(one(&"/a".repeat(49)[..97], Bind).family, Family::Unix);
        assert!(parse_addr_in(&format!("abns@{}", "a".repeat(107)), Bind, &world()).is_ok());
    }

    #[test]
    fn fd_forms() {
        let e = err("fd@3", Bind);
        assert_eq!(e.message(), "cannot use file descriptor '3' : Bad file descriptor.");
        assert_eq!(err("fd@0", Bind).message(), "cannot use file descriptor '0' : Socket operation on non-socket.");
        assert_eq!(one("fd@7", Bind).host, Host::Fd(7));
        assert_eq!(err("sockpair@5", Bind).message(), "cannot use file descriptor '5' : Bad file descriptor.");
        assert_eq!(one("sockpair@7", Server).family, Family::SockPair);
        let e = err("fd@3", Server);
        assert_eq!(e.message(), "a file descriptor is not acceptable here in 'fd@3'");
        assert!(e.blank_line_after());
        assert_eq!(err("fd@x", Server).message(), "file descriptor 'x' is not a valid integer in 'fd@x'");
        assert_eq!(err("fd@-1", Log).message(), "file descriptor '-1' is not a valid integer in 'fd@-1'");
    }

    #[test]
    fn datagram_addresses_are_refused_on_bind_and_server() {
        for w in ["udp@:80", "udp4@:80", "udp6@:::80", "uxdg@/x", "dgram+ipv4@:80"] {
            let e = err(w, Bind);
            assert_eq!(e.message(), format!("dgram-type address not acceptable in '{w}'"));
        }
        assert_eq!(err("udp@1.2.3.4:80", Server).message(), "dgram-type address not acceptable in 'udp@1.2.3.4:80'");
    }

    #[test]
    fn quic_and_newer_prefixes_on_2_6() {
        assert_eq!(
            bind_error_message(&err("quic4@:443", Bind)),
            "'bind' : unsupported stream protocol for datagram family 2 address 'quic4@:443'; \
             QUIC is not compiled in if this is what you were looking for."
        );
        assert_eq!(err("mptcp@:444", Bind).message(), "invalid address: 'mptcp@' in 'mptcp@:444'");
    }

    #[test]
    fn server_accepts_optional_port_offsets_and_names() {
        assert_eq!(one("127.0.0.1", Server).ports, PortSpec::None);
        assert_eq!(one("127.0.0.1:", Server).ports, PortSpec::None);
        assert_eq!(one("*:80", Server).host, ip("0.0.0.0"));
        assert_eq!(one("[::1]:80", Server).host, ip("::1"));
        assert_eq!(one("::1:80", Server).host, ip("::1"));
        assert_eq!(one("1.2.3.4:+10", Server).ports, PortSpec::Offset(10));
        assert_eq!(one("1.2.3.4:-10", Server).ports, PortSpec::Offset(-10));
        assert_eq!(one("1.2.3.4:+abc", Server).ports, PortSpec::Offset(0));
        // names are kept for later resolution, even ones that cannot resolve
        let a = one("api1:8054", Server);
        assert_eq!((a.host, a.resolved, a.family), (Host::Name("api1".into()), None, Family::Unspec));
        assert_eq!(one("192.168.122.XXX:80", Server).host, Host::Name("192.168.122.XXX".into()));
        assert_eq!(one("ipv6@1.2.3.4:80", Server).host, Host::Name("1.2.3.4".into()));
    }

    #[test]
    fn server_refuses_port_ranges() {
        let e = err("1.2.3.4:80-90", Server);
        assert_eq!(e.message(), "port range not permitted here in '1.2.3.4:80-90'");
        assert!(!e.blank_line_after());
    }

    #[test]
    fn server_with_empty_env_address() {
        // corpus 0066: `server domain $BACKEND_HTTP11`
        let e = err("$BACKEND_HTTP11", Server);
        assert_eq!(
            format!("{} : {}", server_context(Some("be_http_11"), "domain"), server_error_message(&e)),
            "'server be_http_11/domain' : '$BACKEND_HTTP11' resolves to an empty address \
             (environment variable missing?)"
        );
        assert_eq!(server_missing_addr_message("server"), "'server' expects <name> and <addr>[:<port>] as arguments.");
    }

    #[test]
    fn server_names_resolve_after_parsing() {
        let w = world();
        let a = parse_addr_in("localhost:80", Server, &w).unwrap().remove(0);
        let got = resolve_in(&a, &w).unwrap();
        assert_eq!(got[0], "127.0.0.1:80".parse::<SocketAddr>().unwrap());
        for name in ["api1:8054", "192.168.122.XXX:80", "nosuch!:80", "ipv6@1.2.3.4:80"] {
            let a = parse_addr_in(name, Server, &w).unwrap().remove(0);
            let e = resolve_in(&a, &w).unwrap_err();
            let host = name.trim_start_matches("ipv6@").rsplit_once(':').unwrap().0;
            assert_eq!(e.message(), format!("could not resolve address '{host}'."));
        }
        assert_eq!(server_unresolved_disabled_warning("www"), "could not resolve address 'www', disabling server.");
        let a = parse_addr_in("[::1]:8", Server, &w).unwrap().remove(0);
        assert_eq!(resolve_in(&a, &w).unwrap()[0], "[::1]:8".parse::<SocketAddr>().unwrap());
    }

    #[test]
    fn system_resolver_finds_localhost_from_etc_hosts() {
        let a = parse_addr("localhost:80", Server).unwrap().remove(0);
        let got = resolve(&a).unwrap();
        assert!(got.iter().all(|s| s.ip().is_loopback() && s.port() == 80));
        let a = parse_addr("127.0.0.1:9", Server).unwrap().remove(0);
        assert_eq!(resolve(&a).unwrap(), vec!["127.0.0.1:9".parse().unwrap()]);
    }

    #[test]
    fn peer_resolves_names_at_parse_time() {
        let e = err("nosuch:1024", Peer);
        assert_eq!(e.message(), "invalid address: 'nosuch' in 'nosuch:1024'");
        assert_eq!(
            format!("{} : {}", server_context(None, "other"), server_error_message(&e)),
            "'server (null)/other' : invalid address: 'nosuch' in 'nosuch:1024'"
        );
        assert_eq!(one("1.2.3.5", Peer).ports, PortSpec::None);
        // the local peer's address is then parsed as a listener
        assert_eq!(
            peers_listener_error_message("peer", "vm", &err("127.0.0.1", Bind)),
            "'peer vm' : missing port specification in '127.0.0.1'"
        );
        assert!(one("localhost:1024", Peer).resolved.is_some());
    }

    #[test]
    fn log_targets() {
        let a = one("udp@1.2.3.4", Log);
        assert_eq!((a.ctrl, a.ports), (SockType::Dgram, PortSpec::None));
        assert_eq!(one("127.0.0.1:514", Log).ctrl, SockType::Dgram);
        assert_eq!(one("/dev/log", Log).family, Family::Unix);
        assert_eq!(one("tcp@127.0.0.1:514", Log).ctrl, SockType::Stream);
        assert_eq!(one("stdout", Log).host, Host::Fd(1));
        assert_eq!(one("stderr", Log).host, Host::Fd(2));
        assert_eq!(one("fd@5", Log).host, Host::Fd(5));
        assert_eq!(one("ring@buf", Log).host, Host::Ring("buf".into()));
        // corpus 0046, 0059: docker-style names that do not resolve
        assert_eq!(log_error_message(&err("rsyslog:514", Log)), "log : invalid address: 'rsyslog' in 'rsyslog:514'");
        let e = err("rsyslog", Log);
        assert_eq!(e.message(), "invalid address: 'rsyslog' in 'rsyslog'");
        assert!(e.blank_line_after());
    }

    #[test]
    fn nameserver_needs_port_and_resolves() {
        // corpus 0065
        assert_eq!(
            nameserver_error_message("consul", &err("consul:8600", Nameserver)),
            "'nameserver consul' : invalid address: 'consul' in 'consul:8600'"
        );
        assert_eq!(
            nameserver_error_message("ns2", &err("1.2.3.4", Nameserver)),
            "'nameserver ns2' : missing port specification in '1.2.3.4'"
        );
        assert_eq!(one("1.2.3.4:53", Nameserver).ctrl, SockType::Dgram);
        assert_eq!(one("tcp@1.2.3.4:53", Nameserver).ctrl, SockType::Stream);
    }

    #[test]
    fn source_forms() {
        assert_eq!(one("1.2.3.4:1024-2048", Source).ports, PortSpec::Range(1024, 2048));
        assert_eq!(one("0.0.0.0", Source).ports, PortSpec::None);
        assert_eq!(err("1.2.3.4:1-2", ProxySource).message(), "port range not permitted here in '1.2.3.4:1-2'");
        let e = err("1.2.3.4:abc", Source);
        assert_eq!(
            server_option_error_raw("source", "1.2.3.4:abc", &e),
            "'source 1.2.3.4:abc' : invalid character 'a' in port number 'abc' in '1.2.3.4:abc'\n\n"
        );
        // as 2.6 printed it after `[f:l] : 'server b/s1' : `
        assert_eq!(
            server_option_error_message("source", "1.2.3.4:abc", &e),
            "\n  'source 1.2.3.4:abc' : invalid character 'a' in port number 'abc' in \
             '1.2.3.4:abc'\n  \n."
        );
        let e = err("1.2.3.4", Socks4);
        assert_eq!(
            server_option_error_message("socks4", "1.2.3.4", &e),
            "'socks4 1.2.3.4' : missing port specification in '1.2.3.4'."
        );
        let e = err("1.2.3.4:+1", Usesrc);
        assert_eq!(
            usesrc_error_messages("1.2.3.4:+1", &e).0,
            "'usesrc 1.2.3.4:+1' : port offset not permitted here in '1.2.3.4:+1'"
        );
        assert_eq!(
            keyword_arg_error_message("source", "1.2.3.4:1-2", &err("1.2.3.4:1-2", ProxySource)),
            "'source 1.2.3.4:1-2' : port range not permitted here in '1.2.3.4:1-2'"
        );
        assert_eq!(
            keyword_arg_error_message("mailer", "mx", &err("1.2.3.4", Mailer)),
            "'mailer mx' : missing port specification in '1.2.3.4'"
        );
        assert_eq!(
            dispatch_error_message(&err("1.2.3.4", Dispatch)),
            "'dispatch' : missing port specification in '1.2.3.4'"
        );
        assert_eq!(err("nosuch:80", Source).message(), "invalid address: 'nosuch' in 'nosuch:80'");
        assert_eq!(err("1.2.3.4", Dispatch).kind, AddrErrorKind::MissingPort);
        assert_eq!(err("1.2.3.4", Mailer).kind, AddrErrorKind::MissingPort);
        assert_eq!(err("1.2.3.4:+1", Usesrc).kind, AddrErrorKind::PortOffsetNotPermitted);
    }

    #[test]
    fn indent_msg_matches_haproxy() {
        assert_eq!(indent_msg("one", 2), "one");
        assert_eq!(indent_msg("one\n", 2), "one");
        assert_eq!(indent_msg("a\nb", 2), "\n  a\n  b");
        assert_eq!(indent_msg("\na\n\n", 2), "\n  a\n  \n");
    }

    #[test]
    fn bracket_and_hostname_edge_cases() {
        assert_eq!(one("[1.2.3.4]:80", Server).host, ip("1.2.3.4"));
        assert_eq!(err("[::1]80", Bind).kind, AddrErrorKind::MissingPort);
        assert!(hostname_is_valid("a-b_c.example.com"));
        assert!(!hostname_is_valid("a b"));
        assert!(!hostname_is_valid(&"a".repeat(64)));
        assert!(hostname_is_valid(&"a".repeat(63)));
    }
}
