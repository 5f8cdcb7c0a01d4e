//! What `benches/runtime.rs` and `benches/cost.rs` share: starting and stopping processes,
//! the in-bench echo and sink servers, a minimal MQTT 3.1.1 client, the connection and
//! bulk clients, CPU readings from /proc, and number formatting. Each bench uses its own part.
#![allow(dead_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| *v > 0.0).unwrap_or(default)
}

/// The open-file limits (soft, hard) of this process, from /proc (no unsafe getrlimit).
pub fn nofile_limits() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Max open files") {
            let mut it = rest.split_whitespace().map(|w| w.parse::<u64>().unwrap_or(1 << 20));
            let soft = it.next().unwrap_or(1024);
            let hard = it.next().unwrap_or(soft);
            return (soft, hard);
        }
    }
    (1024, 1024)
}

// ---------------------------------------------------------------------------------------
// Processes

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts `cmd` through `sh -c 'ulimit -n N; exec cmd'`, so the process itself (not a
    /// shell) gets the raised limit and our PID.
    pub fn spawn(cmd: &str, nofile: u64, log: PathBuf) -> Result<Proc, String> {
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {nofile}; exec {cmd}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {cmd}: {e}"))?;
        Ok(Proc { child, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(format!("exited ({st})")),
            Ok(None) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// VmRSS in kB.
    pub fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Waits (bounded) until every address accepts connections.
    pub fn wait_listening(&mut self, addrs: &[SocketAddr]) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        for a in addrs {
            loop {
                if let Some(why) = self.exited() {
                    return Err(format!("{why}; log:\n{}", self.log_tail()));
                }
                if TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("{a} does not accept connections after 10 s; log:\n{}", self.log_tail()));
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }
}

pub fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The full path of `bin` if it is on PATH or in the sbin directories Debian uses.
pub fn find_bin(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// The hapx binary: `BENCH_HAPX` if set (a binary carried to another machine), else the
/// one cargo built for this bench.
pub fn hapx_bin() -> PathBuf {
    std::env::var_os("BENCH_HAPX").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hapx")))
}

/// The haproxy binary: `BENCH_HAPROXY` if set, else `haproxy` from PATH or sbin.
pub fn haproxy_bin() -> Option<PathBuf> {
    match std::env::var_os("BENCH_HAPROXY") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => find_bin("haproxy"),
    }
}

/// Starts mosquitto on a free loopback port (QoS 0 traffic only, no persistence).
pub fn start_mosquitto(dir: &Path, nofile: u64) -> Result<(Proc, SocketAddr), String> {
    let bin = find_bin("mosquitto").ok_or("mosquitto not found")?;
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    let text = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\n\
         set_tcp_nodelay true\nconnection_messages false\nlog_type error\nlog_type warning\n"
    );
    std::fs::write(&conf, text).map_err(|e| e.to_string())?;
    let mut p = Proc::spawn(&format!("{} -c {}", quote(&bin), quote(&conf)), nofile, dir.join("mosquitto.log"))?;
    p.wait_listening(&[loopback(port)])?;
    Ok((p, loopback(port)))
}

// ---------------------------------------------------------------------------------------
// CPU time of a process, all threads

/// Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`, 100 if that fails).
pub fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// utime + stime of process `pid` (all its threads) from /proc/PID/stat, in nanoseconds
/// (a resolution of one clock tick, 10 ms at 100 Hz).
pub fn cpu_stat_ns(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: the
    // state is field 3, utime field 14 and stime field 15.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 1_000_000_000 / clk_tck())
}

/// Time on CPU of every thread of `pid`, summed from /proc/PID/task/*/schedstat, in
/// nanoseconds (exact, where utime + stime are sampled in ticks). Threads that ended are
/// not counted: the proxies keep theirs.
pub fn cpu_sched_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = e.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        total += text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(total)
}

/// Both CPU readings of a process at one moment: (utime + stime, schedstat), nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    pub stat_ns: u64,
    pub sched_ns: u64,
}

impl Cpu {
    pub fn read(pid: u32) -> Cpu {
        Cpu { stat_ns: cpu_stat_ns(pid).unwrap_or(0), sched_ns: cpu_sched_ns(pid).unwrap_or(0) }
    }
    /// CPU spent since `before`.
    pub fn since(self, before: Cpu) -> Cpu {
        Cpu {
            stat_ns: self.stat_ns.saturating_sub(before.stat_ns),
            sched_ns: self.sched_ns.saturating_sub(before.sched_ns),
        }
    }
}

/// Free loopback ports below the ephemeral range, so that the connections the bench makes
/// by the thousand cannot take them between the check and the bind.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = 20_000 + (std::process::id() as u64 % 500) * 20;
    loop {
        let port = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000 + 20_000;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

// ---------------------------------------------------------------------------------------
// Servers inside the bench

/// Echo: reads one byte, writes it back, closes first (so TIME_WAIT stays on the server
/// side and the clients' ephemeral ports do not run out).
pub fn start_echo() -> io::Result<SocketAddr> {
    let l = TcpListener::bind(("127.0.0.1", free_port()))?;
    let addr = l.local_addr()?;
    for _ in 0..4 {
        let l = l.try_clone()?;
        thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                let mut b = [0u8; 1];
                if matches!(s.read(&mut b), Ok(1)) {
                    let _ = s.write_all(&b);
                }
            }
        });
    }
    Ok(addr)
}

/// Sink: reads until end of stream, then answers the byte count (8 bytes) and closes.
pub fn start_sink() -> io::Result<SocketAddr> {
    let l = TcpListener::bind(("127.0.0.1", free_port()))?;
    let addr = l.local_addr()?;
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                let mut buf = vec![0u8; 256 * 1024];
                let mut total = 0u64;
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => total += n as u64,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return,
                    }
                }
                let _ = s.write_all(&total.to_be_bytes());
            });
        }
    });
    Ok(addr)
}

// ---------------------------------------------------------------------------------------
// A minimal MQTT 3.1.1 client: CONNECT, PUBLISH (QoS 0), SUBSCRIBE, PINGREQ, DISCONNECT.

pub fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    put_len(&mut v, body.len());
    v.extend_from_slice(body);
    v
}

pub fn connect_packet(client_id: &str) -> Vec<u8> {
    // Protocol "MQTT", level 4, clean session, keep-alive 300 s.
    let mut v = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02];
    v.extend_from_slice(&300u16.to_be_bytes());
    put_str(&mut v, client_id);
    frame(0x10, &v)
}

pub fn publish_packet(out: &mut Vec<u8>, topic: &str, payload: &[u8]) {
    out.push(0x30);
    put_len(out, 2 + topic.len() + payload.len());
    put_str(out, topic);
    out.extend_from_slice(payload);
}

pub fn subscribe_packet(packet_id: u16, topic: &str) -> Vec<u8> {
    let mut v = packet_id.to_be_bytes().to_vec();
    put_str(&mut v, topic);
    v.push(0); // QoS 0
    frame(0x82, &v)
}

pub const PINGREQ: [u8; 2] = [0xC0, 0];
pub const DISCONNECT: [u8; 2] = [0xE0, 0];

/// Splits complete packets off a buffered stream; a read timeout returns `None` without
/// losing the bytes of a partial packet.
pub struct Packets {
    pub s: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

/// (first byte, header length, body length) of the packet at the start of `b`.
pub fn parse_header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let first = *b.first()?;
    let mut len = 0usize;
    for i in 0..4 {
        let byte = *b.get(1 + i)?;
        len |= ((byte & 0x7F) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return (b.len() >= 2 + i + len).then_some((first, 2 + i, len));
        }
    }
    None
}

impl Packets {
    pub fn new(s: TcpStream, cap: usize) -> Packets {
        Packets { s, buf: vec![0; cap.max(16)], pos: 0, len: 0 }
    }

    pub fn next(&mut self) -> io::Result<Option<(u8, std::ops::Range<usize>)>> {
        loop {
            if let Some((first, hdr, body)) = parse_header(self.buf.get(self.pos..self.len).unwrap_or_default()) {
                let start = self.pos + hdr;
                self.pos = start + body;
                return Ok(Some((first, start..start + body)));
            }
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.len, 0);
                self.len -= self.pos;
                self.pos = 0;
            }
            if self.len == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.s.read(self.buf.get_mut(self.len..).unwrap_or_default()) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed")),
                Ok(n) => self.len += n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub fn body(&self, r: std::ops::Range<usize>) -> &[u8] {
        self.buf.get(r).unwrap_or_default()
    }

    /// The next packet within `IO_TIMEOUT`, which must be of type `kind` (high nibble).
    pub fn expect(&mut self, kind: u8, what: &str) -> io::Result<std::ops::Range<usize>> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            match self.next()? {
                Some((first, r)) if first >> 4 == kind => return Ok(r),
                Some((first, _)) => {
                    return Err(io::Error::other(format!("expected {what}, got packet type {}", first >> 4)))
                }
                None if Instant::now() > deadline => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no {what}")))
                }
                None => {}
            }
        }
    }
}

pub static CLIENT_IDS: AtomicU64 = AtomicU64::new(0);

pub fn client_id(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), CLIENT_IDS.fetch_add(1, Ordering::Relaxed))
}

pub fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// Connects and waits for a successful CONNACK.
pub fn mqtt_open(addr: SocketAddr, prefix: &str) -> io::Result<Packets> {
    let mut s = tcp(addr)?;
    s.write_all(&connect_packet(&client_id(prefix)))?;
    let mut p = Packets::new(s, 64 * 1024);
    let r = p.expect(2, "CONNACK")?;
    if p.body(r).get(1) != Some(&0) {
        return Err(io::Error::other("CONNACK refused"));
    }
    Ok(p)
}

pub fn mqtt_subscribe(p: &mut Packets, topic: &str) -> io::Result<()> {
    p.s.write_all(&subscribe_packet(1, topic))?;
    p.expect(9, "SUBACK").map(|_| ())
}

/// The payload of a PUBLISH body (topic skipped; QoS 0 has no packet id).
pub fn publish_payload(body: &[u8]) -> &[u8] {
    let tlen = body.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize);
    body.get(2 + tlen..).unwrap_or_default()
}

pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

pub fn payload(seq: u64) -> [u8; 64] {
    let mut p = [b'.'; 64];
    p[..8].copy_from_slice(&now_ns().to_be_bytes());
    p[8..16].copy_from_slice(&seq.to_be_bytes());
    p
}

pub fn field(p: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(p.get(at..at + 8)?.try_into().ok()?))
}

/// One short connection: connect, send 1 byte, read the echo, wait for the server's close.
pub fn conn_once(addr: SocketAddr) -> io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"x")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    if b[0] != b'x' {
        return Err(io::Error::other("wrong echo byte"));
    }
    match s.read(&mut b)? {
        0 => Ok(()),
        _ => Err(io::Error::other("extra bytes after the echo")),
    }
}

/// `count` short connections (`conn_once`) spread over `threads` client threads.
/// Returns (successful, failed, first error).
pub fn conn_count(addr: SocketAddr, threads: usize, count: usize) -> (u64, u64, Option<String>) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let n = count / threads + usize::from(t < count % threads);
            thread::spawn(move || {
                let (mut ok, mut err, mut first) = (0u64, 0u64, None);
                for _ in 0..n {
                    match conn_once(addr) {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            err += 1;
                            first.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                (ok, err, first)
            })
        })
        .collect();
    let (mut ok, mut err, mut first) = (0, 0, None);
    for h in handles {
        if let Ok((o, e, f)) = h.join() {
            ok += o;
            err += e;
            first = first.or(f);
        }
    }
    (ok, err, first)
}

/// Short connections (`conn_once`) from `threads` client threads for `dur`.
/// Returns (connections per second, errors, first error).
pub fn conn_rate(addr: SocketAddr, threads: usize, dur: Duration) -> (f64, u64, Option<String>) {
    let (ok, err, first, secs) = conn_for(addr, threads, dur);
    (ok as f64 / secs, err, first)
}

/// Short connections (`conn_once`) from `threads` client threads for `dur`.
/// Returns (successful, failed, first error, seconds taken).
pub fn conn_for(addr: SocketAddr, threads: usize, dur: Duration) -> (u64, u64, Option<String>, f64) {
    let start = Instant::now();
    let end = start + dur;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(move || {
                let (mut ok, mut err, mut first) = (0u64, 0u64, None);
                while Instant::now() < end {
                    match conn_once(addr) {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            err += 1;
                            first.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                (ok, err, first)
            })
        })
        .collect();
    let (mut ok, mut err, mut first) = (0, 0, None);
    for h in handles {
        if let Ok((o, e, f)) = h.join() {
            ok += o;
            err += e;
            first = first.or(f);
        }
    }
    (ok, err, first, start.elapsed().as_secs_f64())
}

/// Bulk: `streams` connections push `total` bytes to the sink, which answers the count.
/// Returns (Gbit/s, error).
pub fn bulk(addr: SocketAddr, streams: usize, total: u64) -> (f64, Option<String>) {
    let per = total / streams as u64;
    let start = Instant::now();
    let handles: Vec<_> = (0..streams)
        .map(|_| {
            thread::spawn(move || -> io::Result<()> {
                let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                let chunk = vec![0x5Au8; 256 * 1024];
                let mut left = per;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    s.write_all(&chunk[..n])?;
                    left -= n as u64;
                }
                s.shutdown(Shutdown::Write)?;
                let mut count = [0u8; 8];
                s.read_exact(&mut count)?;
                match u64::from_be_bytes(count) {
                    n if n == per => Ok(()),
                    n => Err(io::Error::other(format!("sink received {n} of {per} bytes"))),
                }
            })
        })
        .collect();
    let mut error = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error = error.or(Some(e.to_string())),
            Err(_) => error = error.or(Some("stream thread panicked".into())),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    ((per * streams as u64) as f64 * 8.0 / secs / 1e9, error)
}

pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).map_or(f64::NAN, |&v| v as f64 / 1000.0)
}

/// How many connections answer with a packet of type `kind`; the wait is bounded for all
/// of them together, not per connection.
pub fn answered(conns: &mut [Packets], kind: u8, what: &str, error: &mut Option<String>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ok = 0;
    for p in conns.iter_mut() {
        let got = loop {
            match p.next() {
                Ok(Some((first, _))) if first >> 4 == kind => break Ok(()),
                Ok(Some((first, _))) => break Err(format!("packet type {}", first >> 4)),
                Ok(None) if Instant::now() > deadline => break Err("timed out".into()),
                Ok(None) => {}
                Err(e) => break Err(e.to_string()),
            }
        };
        match got {
            Ok(()) => ok += 1,
            Err(e) => {
                error.get_or_insert_with(|| format!("{what}: {e}"));
            }
        }
    }
    ok
}

pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b != 0.0 {
        format!("{:.2}", a / b)
    } else {
        "—".into()
    }
}

pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Opens `n` MQTT connections through `addr` from 4 threads, each sending CONNECT (the
/// caller reads the CONNACKs with [`answered`]). The first error lands in `error`.
pub fn open_mqtt_conns(addr: SocketAddr, n: usize, error: &mut Option<String>) -> Vec<Packets> {
    let threads = 4;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let count = n / threads + usize::from(t < n % threads);
            thread::spawn(move || -> (Vec<Packets>, Option<String>) {
                let mut v = Vec::with_capacity(count);
                for _ in 0..count {
                    let opened =
                        tcp(addr).and_then(|mut s| s.write_all(&connect_packet(&client_id("idle"))).map(|_| s));
                    match opened {
                        Ok(s) => v.push(Packets::new(s, 16)),
                        Err(e) => return (v, Some(format!("connect: {e}"))),
                    }
                }
                (v, None)
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(n);
    for h in handles {
        if let Ok((v, e)) = h.join() {
            conns.extend(v);
            *error = error.take().or(e);
        }
    }
    conns
}

/// PINGREQ on each (returns how many answered), then DISCONNECT and a bounded wait for the
/// broker's close.
pub fn close_idle(mut conns: Vec<Packets>, error: &mut Option<String>) -> usize {
    for p in conns.iter_mut() {
        let _ = p.s.write_all(&PINGREQ);
    }
    let alive = answered(&mut conns, 13, "PINGRESP", error);
    for p in conns.iter_mut() {
        let _ = p.s.write_all(&DISCONNECT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in conns.iter_mut() {
        while Instant::now() < deadline {
            match p.next() {
                Ok(None) => {}
                _ => break,
            }
        }
    }
    alive
}
