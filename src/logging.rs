//! Traffic logs the HAProxy 2.6 way, for TCP mode.
//!
//! Three parts, each usable alone:
//! - targets: `log` lines parsed into [`LogTarget`] (address, `len`, `format`, `sample`,
//!   facility, level, minlevel), with HAProxy's error texts;
//! - lines: the tcplog line ([`format_tcplog`]), `log-format` strings ([`compile_log_format`]),
//!   and the accept-time "Connect from" line used when no log format is set;
//! - sending: [`Logger`] puts the syslog header of each target's format in front of a line and
//!   sends it without ever blocking (UDP and unix datagrams are non-blocking, stdout/stderr are
//!   reopened non-blocking where the system allows it).
//!
//! Timestamps use the local time zone, read from the TZif file named by `TZ` or from
//! /etc/localtime, because HAProxy prints local time and calling localtime_r would need
//! `unsafe`.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// HAProxy's `option tcplog` format (default_tcp_log_format in 2.6).
pub const TCP_LOG_FORMAT: &str = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";

/// Default `len` of a log target: longer lines are truncated.
pub const DEFAULT_MAX_LEN: usize = 1024;

/// Syslog port used when a `log` address gives none.
pub const SYSLOG_PORT: u16 = 514;

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2", "ftp", "ntp", "audit",
    "alert", "cron2", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Syslog severities, most severe first (their numeric value is the syslog level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Severity {
    const ALL: [Severity; 8] = [
        Severity::Emerg,
        Severity::Alert,
        Severity::Crit,
        Severity::Err,
        Severity::Warning,
        Severity::Notice,
        Severity::Info,
        Severity::Debug,
    ];

    /// The level's name as a `log` line spells it (`info`, `err`...).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Emerg => "emerg",
            Severity::Alert => "alert",
            Severity::Crit => "crit",
            Severity::Err => "err",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Info => "info",
            Severity::Debug => "debug",
        }
    }

    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.iter().copied().find(|s| s.name() == name)
    }
}

/// The facility number (0..=23) of a name such as `local0`.
pub fn facility_from_name(name: &str) -> Option<u8> {
    FACILITIES.iter().position(|f| *f == name).and_then(|p| u8::try_from(p).ok())
}

/// The header layouts of `log ... format <name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogFormat {
    Local,
    Rfc3164,
    Rfc5424,
    Priority,
    Short,
    Timed,
    Iso,
    Raw,
}

impl SyslogFormat {
    pub fn from_name(name: &str) -> Option<SyslogFormat> {
        Some(match name {
            "local" => SyslogFormat::Local,
            "rfc3164" => SyslogFormat::Rfc3164,
            "rfc5424" => SyslogFormat::Rfc5424,
            "priority" => SyslogFormat::Priority,
            "short" => SyslogFormat::Short,
            "timed" => SyslogFormat::Timed,
            "iso" => SyslogFormat::Iso,
            "raw" => SyslogFormat::Raw,
            _ => return None,
        })
    }
}

/// Where a target's lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogSink {
    /// Syslog over UDP (IPv4 or IPv6).
    Udp(SocketAddr),
    /// A unix datagram socket such as /dev/log.
    UnixDgram(PathBuf),
    /// `stdout` or `fd@1`.
    Stdout,
    /// `stderr` or `fd@2`.
    Stderr,
}

/// `sample <ranges>:<size>`: of every `size` messages, only those whose 1-based index falls
/// in one of the (sorted, disjoint) inclusive ranges are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSample {
    pub ranges: Vec<(u32, u32)>,
    pub size: u32,
}

/// One `log` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogTarget {
    pub sink: LogSink,
    /// Longest line sent, header included (`len`, 80..=65535, default 1024).
    pub maxlen: usize,
    /// `None` when no `format` was given: then the header is `local`'s, or `rfc3164`'s when
    /// a hostname is sent (`log-send-hostname`), as in HAProxy.
    pub format: Option<SyslogFormat>,
    pub sample: Option<LogSample>,
    pub facility: u8,
    /// Messages less severe than this are not sent (default `debug`).
    pub level: Severity,
    /// Messages more severe than this are sent at this level (default `emerg`).
    pub minlevel: Severity,
}

/// Parses the words after `log` into a target. Errors carry HAProxy's text (the part after
/// "parsing [file:line] : log : "). `log global` is not a target: the caller resolves it.
pub fn parse_log_target(words: &[String]) -> Result<LogTarget, String> {
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let address = word(0);
    if address.is_empty() || word(1).is_empty() {
        return Err("expects <address> and <facility>  as arguments".to_string());
    }
    let mut cur = 1;
    let mut maxlen = DEFAULT_MAX_LEN;
    if word(cur) == "len" {
        let arg = word(cur + 1);
        let len = atoi(arg);
        if !(80..=65535).contains(&len) {
            return Err(format!("invalid log length '{arg}', must be between 80 and 65535"));
        }
        maxlen = usize::try_from(len).unwrap_or(DEFAULT_MAX_LEN);
        cur += 2;
    }
    let mut format = None;
    if word(cur) == "format" {
        let arg = word(cur + 1);
        format = Some(SyslogFormat::from_name(arg).ok_or_else(|| format!("unknown log format '{arg}'"))?);
        cur += 2;
    }
    let mut sample = None;
    if word(cur) == "sample" {
        sample = Some(parse_sample(word(cur + 1))?);
        cur += 2;
    }
    let facility = facility_from_name(word(cur)).ok_or_else(|| format!("unknown log facility '{}'", word(cur)))?;
    cur += 1;
    let mut level = Severity::Debug;
    if !word(cur).is_empty() {
        level = Severity::from_name(word(cur)).ok_or_else(|| format!("unknown optional log level '{}'", word(cur)))?;
        cur += 1;
    }
    let mut minlevel = Severity::Emerg;
    if !word(cur).is_empty() {
        minlevel = Severity::from_name(word(cur))
            .ok_or_else(|| format!("unknown optional minimum log level '{}'", word(cur)))?;
        cur += 1;
    }
    if !word(cur).is_empty() {
        return Err(format!("cannot handle unexpected argument '{}'", word(cur)));
    }
    let sink = parse_sink(address)?;
    Ok(LogTarget { sink, maxlen, format, sample, facility, level, minlevel })
}

/// C's atoi: leading blanks, optional sign, digits, stop at the first other character.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..).unwrap_or("")),
        Some(b'+') => (false, t.get(1..).unwrap_or("")),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

/// Reads a positive integer the way HAProxy's read_uint does: digits only, stops at the first
/// non-digit, returns the value and the rest.
fn read_uint(s: &str) -> (u32, &str) {
    let end = s.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, rest) = s.split_at(end);
    let mut n: u32 = 0;
    for b in digits.bytes() {
        n = n.saturating_mul(10).saturating_add(u32::from(b - b'0'));
    }
    (n, rest)
}

fn parse_sample(arg: &str) -> Result<LogSample, String> {
    let Some((ranges_text, size_text)) = arg.split_once(':') else {
        return Err("Missing sample size".to_string());
    };
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    let mut rest = ranges_text;
    while !rest.is_empty() {
        let bad = || format!("wrong sample range '{rest}'");
        let (low, after) = read_uint(rest);
        if low == 0 || !(after.is_empty() || after.starts_with(',') || after.starts_with('-')) {
            return Err(bad());
        }
        let (high, after) = match after.strip_prefix('-') {
            Some(tail) => {
                let (high, after) = read_uint(tail);
                if high == 0 || high <= low || !(after.is_empty() || after.starts_with(',')) {
                    return Err(bad());
                }
                (high, after)
            }
            None => (low, after),
        };
        if ranges.iter().any(|&(l, h)| (low >= l && low <= h) || (high >= l && high <= h)) {
            return Err("ranges are overlapping".to_string());
        }
        ranges.push((low, high));
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    if ranges.is_empty() {
        return Err("no sampling ranges given".to_string());
    }
    let highest = ranges.iter().map(|r| r.1).max().unwrap_or(0);
    let (size, after) = read_uint(size_text);
    if size == 0 || !after.is_empty() {
        return Err(format!("wrong sample size '{size_text}' for sample range '{ranges_text}'"));
    }
    if size < highest {
        return Err(format!(
            "sample size {size} should be greater or equal to {highest} the maximum of the high ranges limits"
        ));
    }
    ranges.sort_unstable();
    Ok(LogSample { ranges, size })
}

/// The address part of a `log` line (a subset of HAProxy's str2sa_range).
fn parse_sink(address: &str) -> Result<LogSink, String> {
    match address {
        "stdout" | "fd@1" => return Ok(LogSink::Stdout),
        "stderr" | "fd@2" => return Ok(LogSink::Stderr),
        _ => {}
    }
    if address.starts_with("ring@") {
        return Err(format!("log target '{address}': ring buffers are not supported"));
    }
    let (prefix, rest) = match address.split_once('@') {
        Some((p, r)) => (Some(p), r),
        None => (None, address),
    };
    match prefix {
        None if rest.starts_with('/') => Ok(LogSink::UnixDgram(PathBuf::from(rest))),
        Some("unix") | Some("uxdg") => Ok(LogSink::UnixDgram(PathBuf::from(rest))),
        None | Some("udp") | Some("udp4") | Some("udp6") | Some("ipv4") | Some("ipv6") => {
            parse_udp_address(address, rest, prefix)
        }
        Some("tcp") | Some("tcp4") | Some("tcp6") | Some("uxst") => {
            Err(format!("log target '{address}': stream targets (implicit rings) are not supported"))
        }
        Some(_) => Err(format!("log target '{address}': address family is not supported")),
    }
}

fn parse_udp_address(address: &str, text: &str, prefix: Option<&str>) -> Result<LogSink, String> {
    let invalid = || format!("invalid address: '{address}'");
    // "[v6]:port" and "[v6]" first; otherwise the port follows the last colon, as in
    // HAProxy (so "::1:514" is ::1 port 514).
    let (host, port_text) = if let Some(inner) = text.strip_prefix('[') {
        let (h, after) = inner.split_once(']').ok_or_else(invalid)?;
        match after {
            "" => (h, ""),
            _ => (h, after.strip_prefix(':').ok_or_else(invalid)?),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (text, ""),
        }
    };
    let port = if port_text.is_empty() {
        SYSLOG_PORT
    } else {
        match port_text.parse::<u16>() {
            Ok(0) => SYSLOG_PORT,
            Ok(p) => p,
            Err(_) => return Err(format!("invalid port '{port_text}'")),
        }
    };
    let want_v6 = matches!(prefix, Some("udp6") | Some("ipv6"));
    let want_v4 = matches!(prefix, Some("udp4") | Some("ipv4"));
    let ip: IpAddr = if host.is_empty() || host == "*" {
        if want_v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        ip
    } else {
        // A name: resolved once, at configuration time, like HAProxy does.
        let found = (host, port)
            .to_socket_addrs()
            .map_err(|_| format!("could not resolve address '{host}'"))?
            .map(|sa| sa.ip())
            .find(|ip| (!want_v6 || ip.is_ipv6()) && (!want_v4 || ip.is_ipv4()));
        found.ok_or_else(|| format!("could not resolve address '{host}'"))?
    };
    if (want_v6 && ip.is_ipv4()) || (want_v4 && ip.is_ipv6()) {
        return Err(invalid());
    }
    Ok(LogSink::Udp(SocketAddr::new(ip, port)))
}

// ---------------------------------------------------------------------------------------
// Local time without libc: civil dates from day counts and the zone's TZif file.

struct Zone {
    transitions: Vec<(i64, usize)>,
    offsets: Vec<i32>,
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(i64::from_be_bytes(a))
}

/// Reads a TZif file's transitions and offsets (the 64-bit block when there is one).
fn parse_tzif(b: &[u8]) -> Option<Zone> {
    if b.get(0..4)? != b"TZif" {
        return None;
    }
    let counts = |base: usize| -> Option<[usize; 6]> {
        let mut c = [0usize; 6];
        for (i, slot) in c.iter_mut().enumerate() {
            *slot = usize::try_from(be_u32(b, base + 20 + 4 * i)?).ok()?;
        }
        Some(c)
    };
    let [isut, isstd, leap, timecnt, typecnt, charcnt] = counts(0)?;
    let v1_len = timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut;
    let version = *b.get(4)?;
    let (base, time_size) = if version >= b'2' { (44 + v1_len, 8) } else { (0, 4) };
    let [_, _, _, timecnt, typecnt, _] = counts(base)?;
    let times_at = base + 44;
    let idx_at = times_at + timecnt * time_size;
    let types_at = idx_at + timecnt;
    let mut offsets = Vec::with_capacity(typecnt);
    for t in 0..typecnt {
        let raw = be_u32(b, types_at + 6 * t)?;
        offsets.push(i32::from_be_bytes(raw.to_be_bytes()));
    }
    let mut transitions = Vec::with_capacity(timecnt);
    for i in 0..timecnt {
        let at = if time_size == 8 {
            be_i64(b, times_at + 8 * i)?
        } else {
            i64::from(i32::from_be_bytes(be_u32(b, times_at + 4 * i)?.to_be_bytes()))
        };
        let idx = usize::from(*b.get(idx_at + i)?);
        if idx >= offsets.len() {
            return None;
        }
        transitions.push((at, idx));
    }
    Some(Zone { transitions, offsets })
}

fn load_zone() -> Option<Zone> {
    let path = match std::env::var("TZ") {
        Ok(tz) => {
            let name = tz.strip_prefix(':').unwrap_or(&tz);
            if name.is_empty() || name == "UTC" || name == "GMT" || name == "UTC0" {
                return None;
            }
            if name.starts_with('/') {
                PathBuf::from(name)
            } else {
                PathBuf::from("/usr/share/zoneinfo").join(name)
            }
        }
        Err(_) => PathBuf::from("/etc/localtime"),
    };
    parse_tzif(&std::fs::read(path).ok()?)
}

/// Seconds east of UTC in the local zone at `unix` (0 when the zone cannot be read; after the
/// file's last transition its last offset holds, the POSIX footer rule is not applied).
fn local_offset(unix: i64) -> i32 {
    static ZONE: OnceLock<Option<Zone>> = OnceLock::new();
    let Some(zone) = ZONE.get_or_init(load_zone) else {
        return 0;
    };
    let pos = zone.transitions.partition_point(|&(t, _)| t <= unix);
    let idx = match pos.checked_sub(1).and_then(|p| zone.transitions.get(p)) {
        Some(&(_, idx)) => idx,
        None => 0,
    };
    zone.offsets.get(idx).copied().unwrap_or(0)
}

/// A broken-down date; `mon` is 0-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    mon: usize,
    mday: u32,
    hour: u32,
    min: u32,
    sec: u32,
    /// Microseconds within the second.
    usec: u32,
    /// Seconds east of UTC.
    offset: i32,
}

impl Civil {
    fn month_name(&self) -> &'static str {
        MONTHS.get(self.mon).copied().unwrap_or("Jan")
    }
}

fn unix_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_micros()),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_micros() {
                0 => (-secs, 0),
                us => (-secs - 1, 1_000_000 - us),
            }
        }
    }
}

/// Broken-down time at `offset` seconds east of UTC (days-to-civil after H. Hinnant).
fn civil_at(t: SystemTime, offset: i32) -> Civil {
    let (secs, usec) = unix_parts(t);
    let local = secs.saturating_add(i64::from(offset));
    let days = local.div_euclid(86_400);
    let sod = local.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let mday = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        mon: usize::try_from(month - 1).unwrap_or(0),
        mday: u32::try_from(mday).unwrap_or(1),
        hour: u32::try_from(sod / 3600).unwrap_or(0),
        min: u32::try_from(sod % 3600 / 60).unwrap_or(0),
        sec: u32::try_from(sod % 60).unwrap_or(0),
        usec,
        offset,
    }
}

fn local_civil(t: SystemTime) -> Civil {
    civil_at(t, local_offset(unix_parts(t).0))
}

/// `25/Nov/2026:10:00:00.123`, HAProxy's %t.
fn date_log(c: &Civil) -> String {
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02}.{:03}",
        c.mday,
        c.month_name(),
        c.year,
        c.hour,
        c.min,
        c.sec,
        c.usec / 1000
    )
}

/// `+0100` style offset.
fn offset_hhmm(offset: i32, colon: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    if colon {
        format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
    } else {
        format!("{sign}{:02}{:02}", a / 3600, a % 3600 / 60)
    }
}

/// `2026-11-25T11:03:35.278688+00:00`, the ISO time of the timed, iso and rfc5424 headers.
fn iso_us(c: &Civil) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}",
        c.year,
        c.mon + 1,
        c.mday,
        c.hour,
        c.min,
        c.sec,
        c.usec,
        offset_hhmm(c.offset, true)
    )
}

// ---------------------------------------------------------------------------------------
// Syslog headers.

/// What the headers say about the sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderMeta {
    /// `log-tag`, or the program name (HAProxy uses its argv[0] base name).
    pub tag: String,
    pub pid: u32,
    /// `log-send-hostname`: sent in rfc3164/rfc5424 headers and turns the default header
    /// into rfc3164's.
    pub hostname: Option<String>,
}

impl HeaderMeta {
    /// This process, with the given tag and no hostname sent.
    pub fn for_process(tag: &str) -> HeaderMeta {
        HeaderMeta { tag: tag.to_string(), pid: std::process::id(), hostname: None }
    }
}

/// The header HAProxy 2.6 puts before a line for `format` (None = no `format` given),
/// at time `now`. Priority is facility*8+level, except `short`/`timed` which carry the level
/// alone.
pub fn format_header(
    format: Option<SyslogFormat>,
    facility: u8,
    level: Severity,
    now: SystemTime,
    meta: &HeaderMeta,
) -> String {
    header_at(format, facility, level, &local_civil(now), meta)
}

fn header_at(format: Option<SyslogFormat>, facility: u8, level: Severity, c: &Civil, meta: &HeaderMeta) -> String {
    let format = format.unwrap_or(if meta.hostname.is_some() { SyslogFormat::Rfc3164 } else { SyslogFormat::Local });
    let level = level as u32;
    let prio = u32::from(facility) * 8 + level;
    let tag_pid = if meta.tag.is_empty() { String::new() } else { format!("{}[{}]: ", meta.tag, meta.pid) };
    match format {
        SyslogFormat::Local | SyslogFormat::Rfc3164 => {
            let host = match (format, &meta.hostname) {
                (SyslogFormat::Rfc3164, Some(h)) if !h.is_empty() => format!("{h} "),
                (SyslogFormat::Rfc3164, _) => "localhost ".to_string(),
                _ => String::new(),
            };
            format!("<{prio}>{} {:2} {:02}:{:02}:{:02} {host}{tag_pid}", c.month_name(), c.mday, c.hour, c.min, c.sec)
        }
        SyslogFormat::Rfc5424 => {
            let field = |s: Option<&str>| match s {
                Some(v) if !v.is_empty() => v.to_string(),
                _ => "-".to_string(),
            };
            format!(
                "<{prio}>1 {} {} {} {} - - ",
                iso_us(c),
                field(meta.hostname.as_deref()),
                field(Some(&meta.tag)),
                meta.pid
            )
        }
        SyslogFormat::Priority => format!("<{prio}>"),
        SyslogFormat::Short => format!("<{level}>"),
        SyslogFormat::Timed => format!("<{level}>{} ", iso_us(c)),
        SyslogFormat::Iso => format!("{} ", iso_us(c)),
        SyslogFormat::Raw => String::new(),
    }
}

/// The bytes sent to `target` for `line`: header, line, truncated as HAProxy truncates
/// (datagrams: header+line cut at `len`, then LF; stdout/stderr: the whole including LF fits
/// in `len`). Trailing LFs of `line` are dropped first.
pub fn build_message(target: &LogTarget, level: Severity, line: &str, now: SystemTime, meta: &HeaderMeta) -> Vec<u8> {
    let header = format_header(target.format, target.facility, level, now, meta);
    let body = line.trim_end_matches(['\n', '\0']);
    let limit = match target.sink {
        LogSink::Stdout | LogSink::Stderr => target.maxlen.saturating_sub(1),
        _ => target.maxlen,
    };
    let mut out = Vec::with_capacity(header.len() + body.len() + 1);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body.as_bytes());
    out.truncate(limit);
    out.push(b'\n');
    out
}

// ---------------------------------------------------------------------------------------
// Sending.

struct SampleState {
    index: u32,
    range: usize,
    in_range: Vec<u32>,
}

enum StdWriter {
    Stdout,
    Stderr,
}

/// Sends lines to a set of targets. Datagrams never block (one that cannot leave now is
/// dropped and counted in [`Logger::dropped`]); stdout and stderr are written as HAProxy
/// writes them, on the process's own descriptors.
pub struct Logger {
    targets: Vec<LogTarget>,
    meta: HeaderMeta,
    samples: Vec<Mutex<SampleState>>,
    udp4: Option<UdpSocket>,
    udp6: Option<UdpSocket>,
    unix: Option<UnixDatagram>,
    stdout: Option<Mutex<StdWriter>>,
    stderr: Option<Mutex<StdWriter>>,
    dropped: std::sync::atomic::AtomicU64,
}

fn udp_socket(bind: SocketAddr) -> Option<UdpSocket> {
    let s = UdpSocket::bind(bind).ok()?;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

fn std_writer(fd: u8) -> StdWriter {
    // The process's own descriptor, as HAProxy writes it: a second descriptor on the same
    // file (reopened through /proc) would keep its own offset and overwrite what the other
    // one writes when both go to one file (`hapx ... >file 2>&1`).
    if fd == 1 {
        StdWriter::Stdout
    } else {
        StdWriter::Stderr
    }
}

impl Logger {
    pub fn new(targets: Vec<LogTarget>, meta: HeaderMeta) -> Logger {
        let has = |f: &dyn Fn(&LogSink) -> bool| targets.iter().any(|t| f(&t.sink));
        let udp4 = if has(&|s| matches!(s, LogSink::Udp(SocketAddr::V4(_)))) {
            udp_socket(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
        } else {
            None
        };
        let udp6 = if has(&|s| matches!(s, LogSink::Udp(SocketAddr::V6(_)))) {
            udp_socket(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)))
        } else {
            None
        };
        let unix = if has(&|s| matches!(s, LogSink::UnixDgram(_))) {
            UnixDatagram::unbound().ok().filter(|u| u.set_nonblocking(true).is_ok())
        } else {
            None
        };
        let stdout = has(&|s| *s == LogSink::Stdout).then(|| Mutex::new(std_writer(1)));
        let stderr = has(&|s| *s == LogSink::Stderr).then(|| Mutex::new(std_writer(2)));
        let samples = targets
            .iter()
            .map(|t| {
                Mutex::new(SampleState {
                    index: 0,
                    range: 0,
                    in_range: vec![0; t.sample.as_ref().map_or(0, |s| s.ranges.len())],
                })
            })
            .collect();
        Logger {
            targets,
            meta,
            samples,
            udp4,
            udp6,
            unix,
            stdout,
            stderr,
            dropped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn targets(&self) -> &[LogTarget] {
        &self.targets
    }

    /// Lines that could not be sent without blocking.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends `line` at `severity` to every target whose level lets it through.
    pub fn send(&self, severity: Severity, line: &str) {
        let now = SystemTime::now();
        for (i, target) in self.targets.iter().enumerate() {
            if severity > target.level {
                continue;
            }
            if !self.sample_passes(i, target) {
                continue;
            }
            // minlevel caps how severe a line may look to this target
            let level = severity.max(target.minlevel);
            let msg = build_message(target, level, line, now, &self.meta);
            if !self.deliver(&target.sink, &msg) {
                self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    fn sample_passes(&self, i: usize, target: &LogTarget) -> bool {
        let Some(sample) = &target.sample else {
            return true;
        };
        let Some(Ok(mut st)) = self.samples.get(i).map(Mutex::lock) else {
            return true;
        };
        let mut pass = false;
        if let (Some(&(low, high)), Some(count)) = (sample.ranges.get(st.range), st.in_range.get(st.range).copied()) {
            pass = low <= st.index + 1 && st.index < high;
            if pass {
                let width = high.saturating_sub(low).saturating_add(1);
                let next = count.saturating_add(1) % width;
                let r = st.range;
                if let Some(slot) = st.in_range.get_mut(r) {
                    *slot = next;
                }
                if next == 0 {
                    st.range = (st.range + 1) % sample.ranges.len().max(1);
                }
            }
        }
        st.index = (st.index + 1) % sample.size.max(1);
        pass
    }

    fn deliver(&self, sink: &LogSink, msg: &[u8]) -> bool {
        match sink {
            LogSink::Udp(addr) => {
                let sock = if addr.is_ipv4() { &self.udp4 } else { &self.udp6 };
                sock.as_ref().is_some_and(|s| s.send_to(msg, addr).is_ok())
            }
            LogSink::UnixDgram(path) => self.unix.as_ref().is_some_and(|s| s.send_to(msg, path).is_ok()),
            LogSink::Stdout => write_std(self.stdout.as_ref(), msg),
            LogSink::Stderr => write_std(self.stderr.as_ref(), msg),
        }
    }
}

/// One write per line, so lines from several loggers do not interleave within a line.
fn write_std(w: Option<&Mutex<StdWriter>>, msg: &[u8]) -> bool {
    let Some(Ok(mut w)) = w.map(Mutex::lock) else {
        return false;
    };
    match &mut *w {
        StdWriter::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(msg).and_then(|_| out.flush()).is_ok()
        }
        StdWriter::Stderr => std::io::stderr().write_all(msg).is_ok(),
    }
}

// ---------------------------------------------------------------------------------------
// Session lines.

/// What a TCP session's log line reports. Timers are in milliseconds, -1 when not reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLog {
    pub client: SocketAddr,
    pub accept_time: SystemTime,
    pub frontend: String,
    pub backend: String,
    /// `None` prints `<NOSRV>`.
    pub server: Option<String>,
    pub tw_ms: i64,
    pub tc_ms: i64,
    pub tt_ms: i64,
    /// Bytes sent to the client (%B).
    pub bytes_read: u64,
    /// Two letters: termination cause and session state at close (see [`TERMINATION_CODES`]).
    pub term: [u8; 2],
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srv_conn: u32,
    pub retries: u32,
    pub srv_queue: u32,
    pub backend_queue: u32,
    // Fields beyond the tcplog line, for log-format variables.
    /// Bytes received from the client (%U; `option dontlognull` looks at it).
    pub bytes_uploaded: u64,
    /// The address the client connected to (%fi %fp).
    pub frontend_addr: Option<SocketAddr>,
    /// The server's address (%si %sp).
    pub server_addr: Option<SocketAddr>,
    /// Our side of the server connection (%bi %bp).
    pub backend_src: Option<SocketAddr>,
    /// Handshake time (%Th).
    pub th_ms: i64,
    /// The session went to another server after a failure: %rc gets a `+`.
    pub redispatched: bool,
    /// The frontend listener does TLS: %ft gets a `~`.
    pub frontend_ssl: bool,
    /// unique-id (%ID).
    pub unique_id: Option<String>,
    /// Request/session counter (%rt).
    pub request_counter: u64,
    /// Lines logged so far by the frontend (%lc).
    pub log_count: u64,
}

impl SessionLog {
    /// A session with every counter at 0, timers not reached and no server.
    pub fn new(client: SocketAddr, accept_time: SystemTime, frontend: &str, backend: &str) -> SessionLog {
        SessionLog {
            client,
            accept_time,
            frontend: frontend.to_string(),
            backend: backend.to_string(),
            server: None,
            tw_ms: -1,
            tc_ms: -1,
            tt_ms: -1,
            bytes_read: 0,
            term: *b"--",
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srv_conn: 0,
            retries: 0,
            srv_queue: 0,
            backend_queue: 0,
            bytes_uploaded: 0,
            frontend_addr: None,
            server_addr: None,
            backend_src: None,
            th_ms: 0,
            redispatched: false,
            frontend_ssl: false,
            unique_id: None,
            request_counter: 0,
            log_count: 0,
        }
    }
}

/// Termination codes of a TCP session, first letter (why it ended) then second (in which
/// state), as HAProxy's documentation (section 8.5) describes them.
pub const TERMINATION_CODES: &[(&str, &str)] = &[
    ("-", "normal end: both sides closed, or the data transfer completed"),
    ("C", "the client aborted (closed or reset) before the session ended"),
    ("S", "the server aborted or refused the connection, or sent an error"),
    ("P", "the proxy ended it (tcp-request rule, reject, resource check)"),
    ("L", "the proxy answered locally without reaching a server"),
    ("R", "a resource ran out on the proxy (memory, sockets, ports)"),
    ("I", "an internal error in the proxy"),
    ("D", "the server was marked down and on-marked-down shutdown-sessions killed it"),
    ("U", "a backup server came up and on-marked-up shutdown-backup-sessions killed it"),
    ("K", "killed by an administrator (CLI shutdown session)"),
    ("c", "client-side timeout expired (timeout client)"),
    ("s", "server-side timeout expired (timeout server or timeout connect)"),
    ("-.", "second letter: normal session completion"),
    ("R.", "waiting for a complete request from the client"),
    ("Q.", "waiting in a queue for a connection slot"),
    ("C.", "waiting for the connection to the server to be established"),
    ("H.", "waiting for, receiving or processing server headers (HTTP only)"),
    ("D.", "data transfer phase"),
    ("L.", "the proxy was transmitting the last data to the client"),
    ("T.", "tarpitted (HTTP only)"),
];

/// Cause letters that make a session an error for `log-separate-errors` and
/// `dontlog-normal`: anything but normal and locally-answered.
fn is_error_cause(c: u8) -> bool {
    !matches!(c, b'-' | b'L')
}

/// Whether HAProxy counts the session as an error: abnormal termination, redispatch, or
/// retries on an otherwise clean session.
pub fn is_error(s: &SessionLog) -> bool {
    let cause = s.term[0];
    s.redispatched || is_error_cause(cause) || (cause == b'-' && s.retries > 0)
}

/// `option dontlognull`: no line for a session that received nothing from the client.
pub fn should_log(s: &SessionLog, dontlognull: bool) -> bool {
    !(dontlognull && s.bytes_uploaded == 0)
}

/// The level of a session's line: `err` for errors under `option log-separate-errors`,
/// `info` otherwise.
pub fn session_severity(s: &SessionLog, log_separate_errors: bool) -> Severity {
    if log_separate_errors && is_error(s) {
        Severity::Err
    } else {
        Severity::Info
    }
}

fn term_str(t: [u8; 2]) -> String {
    t.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }).collect()
}

/// The `option tcplog` line.
pub fn format_tcplog(s: &SessionLog) -> String {
    format!(
        "{}:{} [{}] {}{} {}/{} {}/{}/{} {} {} {}/{}/{}/{}/{}{} {}/{}",
        s.client.ip(),
        s.client.port(),
        date_log(&local_civil(s.accept_time)),
        s.frontend,
        if s.frontend_ssl { "~" } else { "" },
        text_or_dash(&s.backend),
        s.server.as_deref().unwrap_or("<NOSRV>"),
        s.tw_ms,
        s.tc_ms,
        s.tt_ms,
        s.bytes_read,
        term_str(s.term),
        s.actconn,
        s.feconn,
        s.beconn,
        s.srv_conn,
        if s.redispatched { "+" } else { "" },
        s.retries,
        s.srv_queue,
        s.backend_queue
    )
}

fn text_or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// The line logged at accept time when a frontend has log targets but no log format
/// (neither `option tcplog` nor `log-format`): `Connect from 127.0.0.1:36880 to
/// 127.0.0.1:6600 (fe/TCP)`.
pub fn format_connect_line(client: SocketAddr, frontend_addr: Option<SocketAddr>, frontend: &str) -> String {
    let (to, port) = match frontend_addr {
        Some(a) => (a.ip().to_string(), a.port()),
        None => ("undetermined address".to_string(), 0),
    };
    format!("Connect from {}:{} to {to}:{port} ({frontend}/TCP)", client.ip(), client.port())
}

// ---------------------------------------------------------------------------------------
// log-format.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    Bytes,
    Hostname,
    UniqueId,
    Status,
    DateGmt,
    Tc,
    Th,
    DateLocal,
    Td,
    Ts,
    Tt,
    Tu,
    Tw,
    BytesUp,
    ActConn,
    Backend,
    BeConn,
    BackendIp,
    BackendPort,
    BackendQueue,
    ClientIp,
    ClientPort,
    Frontend,
    FeConn,
    FrontendIp,
    FrontendPort,
    FrontendXprt,
    LogCount,
    Ms,
    Pid,
    Retries,
    Counter,
    Server,
    SrvConn,
    ServerIp,
    ServerPort,
    SrvQueue,
    SslCipher,
    SslVersion,
    Date,
    TermState,
    TermStateCk,
}

/// The TCP-mode variables of HAProxy 2.6's log-format table that we render.
const TCP_VARS: &[(&str, Var)] = &[
    ("B", Var::Bytes),
    ("H", Var::Hostname),
    ("ID", Var::UniqueId),
    ("ST", Var::Status),
    ("T", Var::DateGmt),
    ("Tc", Var::Tc),
    ("Th", Var::Th),
    ("Tl", Var::DateLocal),
    ("Td", Var::Td),
    ("Ts", Var::Ts),
    ("Tt", Var::Tt),
    ("Tu", Var::Tu),
    ("Tw", Var::Tw),
    ("U", Var::BytesUp),
    ("ac", Var::ActConn),
    ("b", Var::Backend),
    ("bc", Var::BeConn),
    ("bi", Var::BackendIp),
    ("bp", Var::BackendPort),
    ("bq", Var::BackendQueue),
    ("ci", Var::ClientIp),
    ("cp", Var::ClientPort),
    ("f", Var::Frontend),
    ("fc", Var::FeConn),
    ("fi", Var::FrontendIp),
    ("fp", Var::FrontendPort),
    ("ft", Var::FrontendXprt),
    ("lc", Var::LogCount),
    ("ms", Var::Ms),
    ("pid", Var::Pid),
    ("rc", Var::Retries),
    ("rt", Var::Counter),
    ("s", Var::Server),
    ("sc", Var::SrvConn),
    ("si", Var::ServerIp),
    ("sp", Var::ServerPort),
    ("sq", Var::SrvQueue),
    ("sslc", Var::SslCipher),
    ("sslv", Var::SslVersion),
    ("t", Var::Date),
    ("ts", Var::TermState),
    ("tsc", Var::TermStateCk),
];

/// Variables HAProxy accepts only in HTTP mode.
const HTTP_ONLY_VARS: &[&str] =
    &["CC", "CS", "Ta", "Ti", "Tq", "Tr", "TR", "HM", "HP", "HPO", "HQ", "HU", "HV", "r", "tr", "trg", "trl"];

/// TCP-mode variables of HAProxy that need HTTP captures, which TCP sessions do not have.
const UNSUPPORTED_VARS: &[&str] = &["hr", "hrl", "hs", "hsl"];

const OPT_MANDATORY: u8 = 1;
const OPT_QUOTE: u8 = 2;
const OPT_HEXA: u8 = 4;
const OPT_ESC: u8 = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Text(String),
    /// A space under space merging: printed only after something that is not a space.
    Separator,
    Var(Var, u8),
}

/// A compiled `log-format` string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFormat {
    nodes: Vec<Node>,
}

/// Applies `+X`/`-X` flags of a `%{...}` argument to `opts`.
fn apply_var_args(arg: &str, mut opts: u8) -> u8 {
    for part in arg.split(',') {
        let (add, name) = match part.as_bytes().first() {
            Some(b'+') => (true, part.get(1..).unwrap_or("")),
            Some(b'-') => (false, part.get(1..).unwrap_or("")),
            _ => continue,
        };
        let mask = match name {
            "M" => OPT_MANDATORY,
            "Q" => OPT_QUOTE,
            "X" => OPT_HEXA,
            "E" => OPT_ESC,
            _ => continue,
        };
        if add {
            opts |= mask;
        } else {
            opts &= !mask;
        }
    }
    opts
}

/// Compiles a `log-format` string for a TCP frontend, as HAProxy parses it (mandatory `-`
/// for empty values and merged spaces by default). Errors carry HAProxy's text after
/// "failed to parse log-format : ". `%[sample]` expressions are refused (not supported yet).
pub fn compile_log_format(fmt: &str) -> Result<LogFormat, String> {
    let b = fmt.as_bytes();
    let mut nodes = Vec::new();
    let mut opts = OPT_MANDATORY;
    let mut text = String::new();
    let flush = |text: &mut String, nodes: &mut Vec<Node>| {
        if !text.is_empty() {
            nodes.push(Node::Text(std::mem::take(text)));
        }
    };
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b' ' {
            flush(&mut text, &mut nodes);
            nodes.push(Node::Separator);
            i += 1;
            continue;
        }
        if c != b'%' {
            // copy the whole UTF-8 character
            let ch_len = fmt.get(i..).and_then(|s| s.chars().next()).map_or(1, char::len_utf8);
            text.push_str(fmt.get(i..i + ch_len).unwrap_or(""));
            i += ch_len;
            continue;
        }
        // after '%'
        let start = i;
        i += 1;
        let mut arg: Option<&str> = None;
        match b.get(i) {
            None => return Err("truncated line after '%'".to_string()),
            Some(b'%') => {
                text.push('%');
                i += 1;
                continue;
            }
            Some(b'[') => {
                return Err(format!("sample expressions are not supported yet: '{}'", fmt.get(start..).unwrap_or("")))
            }
            Some(&d) if d.is_ascii_digit() || d == b' ' || d == b'\t' => {
                return Err(format!(
                    "unexpected variable name near '{}' at position {} line : '{fmt}'. Maybe you want to write a single '%', use the syntax '%%'",
                    d as char, i
                ));
            }
            Some(b'{') => {
                let rest = fmt.get(i + 1..).unwrap_or("");
                let Some(close) = rest.find('}') else {
                    return Err(format!("truncated line after '{rest}'"));
                };
                arg = rest.get(..close);
                i += 1 + close + 1;
                match b.get(i) {
                    Some(b'[') => {
                        return Err(format!(
                            "sample expressions are not supported yet: '{}'",
                            fmt.get(start..).unwrap_or("")
                        ))
                    }
                    Some(c) if c.is_ascii_alphanumeric() => {}
                    _ => {
                        return Err(format!(
                            "parse argument modifier without variable name near '%{{{}}}'",
                            arg.unwrap_or("")
                        ))
                    }
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {}
            // any other character is literal text and the '%' is dropped, as in HAProxy
            Some(_) => continue,
        }
        let name_len = b.get(i..).unwrap_or(&[]).iter().take_while(|c| c.is_ascii_alphanumeric()).count();
        let name = fmt.get(i..i + name_len).unwrap_or("");
        i += name_len;
        let var_opts = arg.map_or(opts, |a| apply_var_args(a, opts));
        if name == "o" {
            opts = var_opts;
            continue;
        }
        if let Some(&(_, var)) = TCP_VARS.iter().find(|(n, _)| *n == name) {
            flush(&mut text, &mut nodes);
            nodes.push(Node::Var(var, var_opts));
        } else if HTTP_ONLY_VARS.contains(&name) {
            return Err(format!("format variable '{name}' is reserved for HTTP mode"));
        } else if UNSUPPORTED_VARS.contains(&name) {
            return Err(format!("format variable '{name}' needs HTTP captures, not supported in TCP mode"));
        } else {
            return Err(format!(
                "no such format variable '{name}'. If you wanted to emit the '%' character verbatim, you need to use '%%'"
            ));
        }
    }
    flush(&mut text, &mut nodes);
    Ok(LogFormat { nodes })
}

fn push_text(out: &mut String, value: Option<&str>, opts: u8) {
    if opts & OPT_QUOTE != 0 {
        out.push('"');
    }
    match value {
        Some(v) if !v.is_empty() => {
            if opts & OPT_ESC != 0 {
                for ch in v.chars() {
                    if matches!(ch, '"' | '\\' | ']') {
                        out.push('\\');
                    }
                    out.push(ch);
                }
            } else {
                out.push_str(v);
            }
        }
        _ => {
            if opts & (OPT_QUOTE | OPT_MANDATORY) == OPT_MANDATORY {
                out.push('-');
            }
        }
    }
    if opts & OPT_QUOTE != 0 {
        out.push('"');
    }
}

fn push_ip(out: &mut String, addr: Option<SocketAddr>, opts: u8) {
    match addr {
        Some(a) if opts & OPT_HEXA != 0 => match a.ip() {
            IpAddr::V4(v4) => v4.octets().iter().for_each(|o| out.push_str(&format!("{o:02X}"))),
            IpAddr::V6(v6) => v6.octets().iter().for_each(|o| out.push_str(&format!("{o:02X}"))),
        },
        Some(a) => push_text(out, Some(&a.ip().to_string()), opts),
        None => push_text(out, None, opts),
    }
}

fn push_port(out: &mut String, addr: Option<SocketAddr>, opts: u8) {
    match addr {
        Some(a) if opts & OPT_HEXA != 0 => out.push_str(&format!("{:04X}", a.port())),
        Some(a) => out.push_str(&a.port().to_string()),
        None => push_text(out, None, opts),
    }
}

fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
    })
}

impl LogFormat {
    /// Whether the format prints the frontend address (the only field that costs a
    /// `getsockname` per session).
    pub fn uses_frontend_addr(&self) -> bool {
        self.nodes.iter().any(|n| matches!(n, Node::Var(Var::FrontendIp | Var::FrontendPort, _)))
    }

    /// The line for `s`. Merged spaces: a separator prints one space only after something
    /// that is not a space, so leading and repeated spaces collapse as in HAProxy.
    pub fn render(&self, s: &SessionLog) -> String {
        let mut out = String::with_capacity(128);
        let mut last_space = true;
        for node in &self.nodes {
            match node {
                Node::Separator => {
                    if !last_space {
                        out.push(' ');
                        last_space = true;
                    }
                }
                Node::Text(t) => {
                    out.push_str(t);
                    last_space = false;
                }
                Node::Var(v, opts) => {
                    render_var(&mut out, *v, *opts, s);
                    last_space = false;
                }
            }
        }
        out
    }
}

fn render_var(out: &mut String, v: Var, opts: u8, s: &SessionLog) {
    let num = |out: &mut String, n: i64| out.push_str(&n.to_string());
    let unum = |out: &mut String, n: u64| out.push_str(&n.to_string());
    match v {
        Var::Bytes => unum(out, s.bytes_read),
        Var::BytesUp => unum(out, s.bytes_uploaded),
        Var::Hostname => push_text(out, Some(hostname()), opts),
        Var::UniqueId => push_text(out, s.unique_id.as_deref(), opts),
        Var::Status => out.push('0'),
        Var::DateGmt => {
            let c = civil_at(s.accept_time, 0);
            out.push_str(&format!(
                "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
                c.mday,
                c.month_name(),
                c.year,
                c.hour,
                c.min,
                c.sec
            ));
        }
        Var::DateLocal => {
            let c = local_civil(s.accept_time);
            out.push_str(&format!(
                "{:02}/{}/{:04}:{:02}:{:02}:{:02} {}",
                c.mday,
                c.month_name(),
                c.year,
                c.hour,
                c.min,
                c.sec,
                offset_hhmm(c.offset, false)
            ));
        }
        Var::Date => out.push_str(&date_log(&local_civil(s.accept_time))),
        Var::Ts => {
            let secs = unix_parts(s.accept_time).0;
            if opts & OPT_HEXA != 0 {
                out.push_str(&format!("{:04X}", secs as u32));
            } else {
                num(out, secs);
            }
        }
        Var::Ms => {
            let ms = unix_parts(s.accept_time).1 / 1000;
            if opts & OPT_HEXA != 0 {
                out.push_str(&format!("{ms:02X}"));
            } else {
                out.push_str(&format!("{ms:03}"));
            }
        }
        Var::Tw => num(out, s.tw_ms),
        Var::Tc => num(out, s.tc_ms),
        Var::Tt | Var::Tu => num(out, s.tt_ms),
        Var::Th => num(out, s.th_ms),
        // data phase: total minus waiting and connecting, -1 until connected
        Var::Td => num(out, if s.tc_ms >= 0 { s.tt_ms - s.tw_ms.max(0) - s.tc_ms } else { -1 }),
        Var::ActConn => unum(out, u64::from(s.actconn)),
        Var::FeConn => unum(out, u64::from(s.feconn)),
        Var::BeConn => unum(out, u64::from(s.beconn)),
        Var::SrvConn => unum(out, u64::from(s.srv_conn)),
        Var::Retries => {
            if s.redispatched {
                out.push('+');
            }
            unum(out, u64::from(s.retries));
        }
        Var::SrvQueue => unum(out, u64::from(s.srv_queue)),
        Var::BackendQueue => unum(out, u64::from(s.backend_queue)),
        Var::Backend => push_text(out, Some(&s.backend), opts),
        Var::Frontend => push_text(out, Some(&s.frontend), opts),
        Var::FrontendXprt => {
            let quote = opts & OPT_QUOTE != 0;
            if quote {
                out.push('"');
            }
            out.push_str(&s.frontend);
            if s.frontend_ssl {
                out.push('~');
            }
            if quote {
                out.push('"');
            }
        }
        Var::Server => push_text(out, Some(s.server.as_deref().unwrap_or("<NOSRV>")), opts),
        Var::ClientIp => push_ip(out, Some(s.client), opts),
        Var::ClientPort => push_port(out, Some(s.client), opts),
        Var::FrontendIp => push_ip(out, s.frontend_addr, opts),
        Var::FrontendPort => push_port(out, s.frontend_addr, opts),
        Var::ServerIp => push_ip(out, s.server_addr, opts),
        Var::ServerPort => push_port(out, s.server_addr, opts),
        Var::BackendIp => push_ip(out, s.backend_src, opts),
        Var::BackendPort => push_port(out, s.backend_src, opts),
        Var::LogCount => unum(out, s.log_count),
        Var::Counter => {
            if opts & OPT_HEXA != 0 {
                out.push_str(&format!("{:04X}", s.request_counter));
            } else {
                unum(out, s.request_counter);
            }
        }
        Var::Pid => unum(out, u64::from(std::process::id())),
        // no TLS on our listeners yet
        Var::SslCipher | Var::SslVersion => push_text(out, None, opts),
        Var::TermState => out.push_str(&term_str(s.term)),
        Var::TermStateCk => {
            out.push_str(&term_str(s.term));
            out.push_str("--");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    fn target(line: &str) -> Result<LogTarget, String> {
        parse_log_target(&words(line))
    }

    fn meta() -> HeaderMeta {
        HeaderMeta { tag: "haproxy".to_string(), pid: 4821, hostname: None }
    }

    /// 2026-11-25 11:03:35.278688 UTC
    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(1_795_604_615_278_688)
    }

    fn utc() -> Civil {
        civil_at(at(), 0)
    }

    fn session() -> SessionLog {
        let mut s = SessionLog::new("127.0.0.1:52826".parse().unwrap(), at(), "fe", "be");
        s.server = Some("s1".to_string());
        s.tw_ms = 1;
        s.tc_ms = 0;
        s.tt_ms = 0;
        s.bytes_read = 5;
        s.bytes_uploaded = 5;
        s.actconn = 1;
        s.feconn = 1;
        s
    }

    #[test]
    fn log_line_with_address_and_facility_defaults_the_rest() {
        let t = target("127.0.0.1:514 local0").unwrap();
        assert_eq!(t.sink, LogSink::Udp("127.0.0.1:514".parse().unwrap()));
        assert_eq!((t.maxlen, t.format, t.facility), (1024, None, 16));
        assert_eq!((t.level, t.minlevel), (Severity::Debug, Severity::Emerg));
        let t = target("10.0.0.1 local7 notice err").unwrap();
        assert_eq!(t.sink, LogSink::Udp("10.0.0.1:514".parse().unwrap()));
        assert_eq!((t.facility, t.level, t.minlevel), (23, Severity::Notice, Severity::Err));
    }

    #[test]
    fn stdout_raw_and_dev_log_len_targets() {
        let t = target("stdout format raw local0 info").unwrap();
        assert_eq!((t.sink, t.format), (LogSink::Stdout, Some(SyslogFormat::Raw)));
        assert_eq!(t.level, Severity::Info);
        assert_eq!(target("fd@2 daemon").unwrap().sink, LogSink::Stderr);
        let t = target("/dev/log len 1024 local0").unwrap();
        assert_eq!(t.sink, LogSink::UnixDgram(PathBuf::from("/dev/log")));
        assert_eq!(
            target("unix@/run/log.sock local0").unwrap().sink,
            LogSink::UnixDgram(PathBuf::from("/run/log.sock"))
        );
    }

    #[test]
    fn udp_prefixes_and_ipv6_addresses() {
        let sink = |l: &str| target(l).unwrap().sink;
        assert_eq!(sink("udp@1.2.3.4:1514 local0"), LogSink::Udp("1.2.3.4:1514".parse().unwrap()));
        assert_eq!(sink("udp6@::1:1514 local0"), LogSink::Udp("[::1]:1514".parse().unwrap()));
        assert_eq!(sink("[::1]:1515 local0"), LogSink::Udp("[::1]:1515".parse().unwrap()));
        assert_eq!(sink("ipv6@[2001:db8::1] local0"), LogSink::Udp("[2001:db8::1]:514".parse().unwrap()));
        assert!(target("udp4@[::1]:514 local0").is_err());
    }

    #[test]
    fn ring_and_stream_targets_are_unsupported() {
        assert!(target("ring@buf1 local0").unwrap_err().contains("not supported"));
        assert!(target("tcp@127.0.0.1:514 local0").unwrap_err().contains("not supported"));
    }

    // Texts checked against haproxy 2.6.12 -c.
    #[test]
    fn log_line_errors_use_haproxy_texts() {
        let err = |l: &str| target(l).unwrap_err();
        assert_eq!(err("127.0.0.1"), "expects <address> and <facility>  as arguments");
        assert_eq!(err("127.0.0.1 len 10 local0"), "invalid log length '10', must be between 80 and 65535");
        assert_eq!(err("127.0.0.1 format foo local0"), "unknown log format 'foo'");
        assert_eq!(err("127.0.0.1 local9"), "unknown log facility 'local9'");
        assert_eq!(err("127.0.0.1 local0 verbose"), "unknown optional log level 'verbose'");
        assert_eq!(err("127.0.0.1 local0 info bad"), "unknown optional minimum log level 'bad'");
        assert_eq!(err("127.0.0.1 local0 info info x"), "cannot handle unexpected argument 'x'");
        assert_eq!(err("127.0.0.1 sample 1-2 local0"), "Missing sample size");
    }

    #[test]
    fn sample_ranges_parse_and_check() {
        let t = target("127.0.0.1 sample 3,1-2:5 local0").unwrap();
        assert_eq!(t.sample, Some(LogSample { ranges: vec![(1, 2), (3, 3)], size: 5 }));
        assert_eq!(target("127.0.0.1 sample 1-3,2:5 local0").unwrap_err(), "ranges are overlapping");
        assert_eq!(target("127.0.0.1 sample 0:5 local0").unwrap_err(), "wrong sample range '0'");
        assert_eq!(
            target("127.0.0.1 sample 1-4:3 local0").unwrap_err(),
            "sample size 3 should be greater or equal to 4 the maximum of the high ranges limits"
        );
        assert_eq!(target("127.0.0.1 sample 1:x local0").unwrap_err(), "wrong sample size 'x' for sample range '1'");
    }

    #[test]
    fn sampling_sends_only_lines_in_range() {
        let t = target("127.0.0.1:9 sample 2,4:4 local0").unwrap();
        let logger = Logger::new(vec![t.clone()], meta());
        let passed: Vec<bool> = (0..8).map(|_| logger.sample_passes(0, &t)).collect();
        assert_eq!(passed, [false, true, false, true, false, true, false, true]);
    }

    // Headers below are the bytes haproxy 2.6.12 sent for `log 127.0.0.1:5514 [format X]
    // local0`, with time and pid replaced.
    #[test]
    fn header_default_is_local_without_hostname() {
        let h = header_at(None, 16, Severity::Info, &utc(), &meta());
        assert_eq!(h, "<134>Nov 25 11:03:35 haproxy[4821]: ");
        assert_eq!(header_at(Some(SyslogFormat::Local), 16, Severity::Info, &utc(), &meta()), h);
    }

    #[test]
    fn header_rfc3164_says_localhost_unless_hostname_sent() {
        let h = header_at(Some(SyslogFormat::Rfc3164), 16, Severity::Info, &utc(), &meta());
        assert_eq!(h, "<134>Nov 25 11:03:35 localhost haproxy[4821]: ");
        let mut m = meta();
        m.hostname = Some("vm".to_string());
        assert_eq!(header_at(None, 16, Severity::Info, &utc(), &m), "<134>Nov 25 11:03:35 vm haproxy[4821]: ");
    }

    #[test]
    fn header_pads_single_digit_day_with_space() {
        let c = civil_at(UNIX_EPOCH + Duration::from_secs(1_772_500_000), 0);
        let h = header_at(None, 16, Severity::Info, &c, &meta());
        assert_eq!(h, "<134>Mar  3 01:06:40 haproxy[4821]: ");
    }

    #[test]
    fn header_rfc5424_has_version_iso_time_and_nil_fields() {
        let h = header_at(Some(SyslogFormat::Rfc5424), 16, Severity::Info, &utc(), &meta());
        assert_eq!(h, "<134>1 2026-11-25T11:03:35.278688+00:00 - haproxy 4821 - - ");
        let c = civil_at(at(), -5400);
        let h = header_at(Some(SyslogFormat::Rfc5424), 16, Severity::Info, &c, &meta());
        assert_eq!(h, "<134>1 2026-11-25T09:33:35.278688-01:30 - haproxy 4821 - - ");
    }

    #[test]
    fn header_priority_short_timed_iso_raw() {
        let h = |f| header_at(Some(f), 16, Severity::Info, &utc(), &meta());
        assert_eq!(h(SyslogFormat::Priority), "<134>");
        assert_eq!(h(SyslogFormat::Short), "<6>");
        assert_eq!(h(SyslogFormat::Timed), "<6>2026-11-25T11:03:35.278688+00:00 ");
        assert_eq!(h(SyslogFormat::Iso), "2026-11-25T11:03:35.278688+00:00 ");
        assert_eq!(h(SyslogFormat::Raw), "");
    }

    #[test]
    fn error_level_changes_priority() {
        let h = header_at(None, 16, Severity::Err, &utc(), &meta());
        assert!(h.starts_with("<131>"));
    }

    #[test]
    fn datagram_truncates_to_len_then_adds_newline() {
        let t = target("127.0.0.1:5514 len 80 format rfc5424 local0").unwrap();
        let line = format_tcplog(&session());
        let msg = build_message(&t, Severity::Info, &line, at(), &meta());
        assert_eq!(msg.len(), 81);
        assert_eq!(msg.last(), Some(&b'\n'));
    }

    #[test]
    fn stdout_truncates_with_newline_inside_len() {
        let t = target("stdout len 80 format rfc3164 local0").unwrap();
        let line = format_tcplog(&session());
        let msg = build_message(&t, Severity::Info, &line, at(), &meta());
        assert_eq!(msg.len(), 80);
        let t = target("stdout format raw local0").unwrap();
        let msg = build_message(&t, Severity::Info, "abc\n", at(), &meta());
        assert_eq!(msg, b"abc\n");
    }

    #[test]
    fn tcplog_line_layout() {
        let s = session();
        let date = date_log(&local_civil(at()));
        assert_eq!(format_tcplog(&s), format!("127.0.0.1:52826 [{date}] fe be/s1 1/0/0 5 -- 1/1/0/0/0 0/0"));
    }

    #[test]
    fn tcplog_date_has_milliseconds() {
        assert_eq!(date_log(&utc()), "25/Nov/2026:11:03:35.278");
    }

    #[test]
    fn tcplog_refused_connection_without_server_and_redispatch() {
        let mut s = session();
        s.server = None;
        s.tc_ms = -1;
        s.tt_ms = 1001;
        s.bytes_read = 0;
        s.term = *b"SC";
        s.retries = 1;
        s.redispatched = true;
        s.client = "[::1]:4000".parse().unwrap();
        let line = format_tcplog(&s);
        assert!(line.starts_with("::1:4000 ["), "{line}");
        assert!(line.ends_with("] fe be/<NOSRV> 1/-1/1001 0 SC 1/1/0/0/+1 0/0"), "{line}");
    }

    #[test]
    fn tcplog_equals_the_compiled_tcp_format() {
        let f = compile_log_format(TCP_LOG_FORMAT).unwrap();
        let mut s = session();
        assert_eq!(f.render(&s), format_tcplog(&s));
        s.server = None;
        s.term = *b"cD";
        s.redispatched = true;
        s.frontend_ssl = true;
        assert_eq!(f.render(&s), format_tcplog(&s));
    }

    // The line haproxy 2.6.12 sent for this log-format (pid, host and dates aside).
    #[test]
    fn log_format_variables_render_like_haproxy() {
        let f = compile_log_format(
            "  %ci   %{+Q}b %{+Q}s %ft %{+X}ci %{+X}cp %fi:%fp %si:%sp %bi %U %B %{+Q}ID %ID %Td %Tu %Th %tsc %ST %lc %rt %sslc %{-M}ID|%{+E}f %Tw %Tc %Tt %-x %{+Q}o %b %f ",
        )
        .unwrap();
        let mut s = session();
        s.client = "127.0.0.1:53136".parse().unwrap();
        s.frontend_addr = Some("127.0.0.1:6600".parse().unwrap());
        s.server_addr = Some("127.0.0.1:6601".parse().unwrap());
        s.backend_src = Some("127.0.0.1:40000".parse().unwrap());
        s.tw_ms = 1;
        assert_eq!(
            f.render(&s),
            "127.0.0.1 \"be\" \"s1\" fe 7F000001 CF90 127.0.0.1:6600 127.0.0.1:6601 127.0.0.1 5 5 \"\" - -1 0 0 ---- 0 0 0 - |fe 1 0 0 -x \"be\" \"fe\" "
        );
    }

    #[test]
    fn log_format_dates_and_counters() {
        let f = compile_log_format("%T|%Ts|%ms|%{+X}Ts|%t").unwrap();
        let s = session();
        let local = date_log(&local_civil(at()));
        assert_eq!(f.render(&s), format!("25/Nov/2026:11:03:35 +0000|1795604615|278|6B06C087|{local}"));
        assert_eq!(offset_hhmm(3600, false), "+0100");
        let f = compile_log_format("%pid").unwrap();
        assert_eq!(f.render(&s), std::process::id().to_string());
    }

    // Texts checked against haproxy 2.6.12 -c ("failed to parse log-format : <text>").
    #[test]
    fn log_format_errors_use_haproxy_texts() {
        let err = |f: &str| compile_log_format(f).unwrap_err();
        assert_eq!(
            err("%ci %zz"),
            "no such format variable 'zz'. If you wanted to emit the '%' character verbatim, you need to use '%%'"
        );
        assert_eq!(err("%ci %Tr"), "format variable 'Tr' is reserved for HTTP mode");
        assert_eq!(
            err("%ci % x"),
            "unexpected variable name near ' ' at position 5 line : '%ci % x'. Maybe you want to write a single '%', use the syntax '%%'"
        );
        assert_eq!(err("%ci %{+Q}"), "parse argument modifier without variable name near '%{+Q}'");
        assert_eq!(err("%ci %"), "truncated line after '%'");
        assert_eq!(err("%{+Q"), "truncated line after '+Q'");
        assert!(err("%[src]").contains("not supported"));
    }

    #[test]
    fn percent_percent_is_a_literal_percent() {
        let f = compile_log_format("100%% %b").unwrap();
        assert_eq!(f.render(&session()), "100% be");
    }

    #[test]
    fn termination_codes_cover_tcp_letters() {
        for c in ["-", "C", "S", "P", "L", "R", "I", "D", "U", "K", "c", "s"] {
            assert!(TERMINATION_CODES.iter().any(|(k, _)| *k == c), "{c}");
        }
        for c in ["-.", "R.", "Q.", "C.", "D.", "L."] {
            assert!(TERMINATION_CODES.iter().any(|(k, _)| *k == c), "{c}");
        }
    }

    #[test]
    fn errors_go_to_err_level_only_with_log_separate_errors() {
        let mut s = session();
        assert!(!is_error(&s));
        assert_eq!(session_severity(&s, true), Severity::Info);
        s.term = *b"SC";
        assert!(is_error(&s));
        assert_eq!(session_severity(&s, true), Severity::Err);
        assert_eq!(session_severity(&s, false), Severity::Info);
        s.term = *b"LR";
        assert!(!is_error(&s));
        s.term = *b"--";
        s.retries = 1;
        assert!(is_error(&s));
        s.term = *b"cD";
        assert!(is_error(&s));
    }

    #[test]
    fn dontlognull_skips_sessions_without_client_bytes() {
        let mut s = session();
        s.bytes_uploaded = 0;
        s.bytes_read = 0;
        assert!(!should_log(&s, true));
        assert!(should_log(&s, false));
        s.bytes_uploaded = 1;
        assert!(should_log(&s, true));
    }

    #[test]
    fn connect_line_when_no_log_format() {
        let line =
            format_connect_line("127.0.0.1:36880".parse().unwrap(), Some("127.0.0.1:6600".parse().unwrap()), "fe");
        assert_eq!(line, "Connect from 127.0.0.1:36880 to 127.0.0.1:6600 (fe/TCP)");
    }

    #[test]
    fn civil_dates_across_epoch_and_leap_years() {
        let c = civil_at(UNIX_EPOCH, 0);
        assert_eq!((c.year, c.mon, c.mday, c.hour), (1970, 0, 1, 0));
        let c = civil_at(UNIX_EPOCH + Duration::from_secs(951_782_400), 0);
        assert_eq!((c.year, c.mon, c.mday), (2000, 1, 29));
        let c = civil_at(UNIX_EPOCH - Duration::from_millis(1), 0);
        assert_eq!((c.year, c.mon, c.mday, c.hour, c.sec, c.usec), (1969, 11, 31, 23, 59, 999_000));
    }

    #[test]
    fn tzif_v2_transitions_give_offsets() {
        // Two types (+0 and +3600), one transition at t=1000 to the second.
        let mut b = Vec::new();
        let header = |b: &mut Vec<u8>, timecnt: u32, typecnt: u32| {
            b.extend_from_slice(b"TZif2");
            b.extend_from_slice(&[0; 15]);
            for c in [0u32, 0, 0, timecnt, typecnt, 4] {
                b.extend_from_slice(&c.to_be_bytes());
            }
        };
        header(&mut b, 1, 2);
        b.extend_from_slice(&1000i32.to_be_bytes());
        b.push(1);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 14, 16, 1, 2]);
        b.extend_from_slice(b"UTC\0");
        header(&mut b, 1, 2);
        b.extend_from_slice(&1000i64.to_be_bytes());
        b.push(1);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 14, 16, 1, 2]);
        b.extend_from_slice(b"UTC\0");
        let z = parse_tzif(&b).unwrap();
        assert_eq!(z.offsets, vec![0, 3600]);
        assert_eq!(z.transitions, vec![(1000, 1)]);
        assert!(parse_tzif(b"TZif").is_none());
        assert!(parse_tzif(b"nope").is_none());
    }

    #[test]
    fn logger_sends_to_udp_and_unix_datagram_sockets() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let port = rx.local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("hapx-logging-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let urx = UnixDatagram::bind(&path).unwrap();
        urx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let targets = vec![
            target(&format!("127.0.0.1:{port} format raw local0 info")).unwrap(),
            target(&format!("{} format priority local0", path.display())).unwrap(),
        ];
        let logger = Logger::new(targets, meta());
        logger.send(Severity::Debug, "filtered by level");
        logger.send(Severity::Info, "hello");
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello\n");
        let n = urx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<135>filtered by level\n");
        let n = urx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<134>hello\n");
        assert_eq!(logger.dropped(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn minlevel_raises_the_sent_level() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let port = rx.local_addr().unwrap().port();
        let t = target(&format!("127.0.0.1:{port} format priority local0 debug warning")).unwrap();
        Logger::new(vec![t], meta()).send(Severity::Emerg, "x");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<132>x\n");
    }
}
