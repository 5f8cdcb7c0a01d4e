//! The runtime side by side: a direct connection (the limit), `haproxy` and `hapx`, all
//! started from the same configuration text (only the ports differ, `nbthread 1` for both),
//! measured in one run on one machine. The machines are shared and noisy: runs of the
//! targets are interleaved (the order rotates every round), repeated, and the medians and
//! their ratios are reported.
//!
//! Metrics: new connections per second, bulk throughput, MQTT messages per second and
//! latency through mosquitto, resident memory per idle MQTT connection.
//!
//! Run: `cargo bench --bench runtime` (needs `haproxy` and `mosquitto` on PATH; without
//! them the missing parts are skipped). Scale with BENCH_SECONDS (per timed run, default 2),
//! BENCH_CONNS (idle connections, default 10000), BENCH_ROUNDS (default 3),
//! BENCH_BULK_MIB (bytes pushed per bulk run, default 1024), BENCH_CLIENTS (connection-rate
//! client threads, default 8), BENCH_STREAMS (bulk streams, default 2), BENCH_PUBLISHERS
//! (MQTT publishers, default 2).
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Settings

struct Settings {
    seconds: f64,
    conns: usize,
    rounds: usize,
    bulk_bytes: u64,
    clients: usize,
    streams: usize,
    publishers: usize,
}

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| *v > 0.0).unwrap_or(default)
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            seconds: env_num("BENCH_SECONDS", 2.0),
            conns: env_num("BENCH_CONNS", 10_000.0) as usize,
            rounds: (env_num("BENCH_ROUNDS", 3.0) as usize).max(1),
            bulk_bytes: (env_num("BENCH_BULK_MIB", 1024.0) * 1024.0 * 1024.0) as u64,
            clients: (env_num("BENCH_CLIENTS", 8.0) as usize).max(1),
            streams: (env_num("BENCH_STREAMS", 2.0) as usize).max(1),
            publishers: (env_num("BENCH_PUBLISHERS", 2.0) as usize).max(1),
        }
    }
    fn run_time(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }
}

/// The open-file limits (soft, hard) of this process, from /proc (no unsafe getrlimit).
fn nofile_limits() -> (u64, u64) {
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
struct Proc {
    child: Child,
    log: PathBuf,
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
    fn spawn(cmd: &str, nofile: u64, log: PathBuf) -> Result<Proc, String> {
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

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(format!("exited ({st})")),
            Ok(None) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// VmRSS in kB.
    fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Waits (bounded) until every address accepts connections.
    fn wait_listening(&mut self, addrs: &[SocketAddr]) -> Result<(), String> {
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

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The full path of `bin` if it is on PATH or in the sbin directories Debian uses.
fn find_bin(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Free loopback ports below the ephemeral range, so that the connections the bench makes
/// by the thousand cannot take them between the check and the bind.
fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = 20_000 + (std::process::id() as u64 % 500) * 20;
    loop {
        let port = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000 + 20_000;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

// ---------------------------------------------------------------------------------------
// Servers inside the bench

/// Echo: reads one byte, writes it back, closes first (so TIME_WAIT stays on the server
/// side and the clients' ephemeral ports do not run out).
fn start_echo() -> io::Result<SocketAddr> {
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
fn start_sink() -> io::Result<SocketAddr> {
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

fn put_len(out: &mut Vec<u8>, mut n: usize) {
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

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    put_len(&mut v, body.len());
    v.extend_from_slice(body);
    v
}

fn connect_packet(client_id: &str) -> Vec<u8> {
    // Protocol "MQTT", level 4, clean session, keep-alive 300 s.
    let mut v = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02];
    v.extend_from_slice(&300u16.to_be_bytes());
    put_str(&mut v, client_id);
    frame(0x10, &v)
}

fn publish_packet(out: &mut Vec<u8>, topic: &str, payload: &[u8]) {
    out.push(0x30);
    put_len(out, 2 + topic.len() + payload.len());
    put_str(out, topic);
    out.extend_from_slice(payload);
}

fn subscribe_packet(packet_id: u16, topic: &str) -> Vec<u8> {
    let mut v = packet_id.to_be_bytes().to_vec();
    put_str(&mut v, topic);
    v.push(0); // QoS 0
    frame(0x82, &v)
}

const PINGREQ: [u8; 2] = [0xC0, 0];
const DISCONNECT: [u8; 2] = [0xE0, 0];

/// Splits complete packets off a buffered stream; a read timeout returns `None` without
/// losing the bytes of a partial packet.
struct Packets {
    s: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

/// (first byte, header length, body length) of the packet at the start of `b`.
fn parse_header(b: &[u8]) -> Option<(u8, usize, usize)> {
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
    fn new(s: TcpStream, cap: usize) -> Packets {
        Packets { s, buf: vec![0; cap.max(16)], pos: 0, len: 0 }
    }

    fn next(&mut self) -> io::Result<Option<(u8, std::ops::Range<usize>)>> {
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

    fn body(&self, r: std::ops::Range<usize>) -> &[u8] {
        self.buf.get(r).unwrap_or_default()
    }

    /// The next packet within `IO_TIMEOUT`, which must be of type `kind` (high nibble).
    fn expect(&mut self, kind: u8, what: &str) -> io::Result<std::ops::Range<usize>> {
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

static CLIENT_IDS: AtomicU64 = AtomicU64::new(0);

fn client_id(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), CLIENT_IDS.fetch_add(1, Ordering::Relaxed))
}

fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// Connects and waits for a successful CONNACK.
fn mqtt_open(addr: SocketAddr, prefix: &str) -> io::Result<Packets> {
    let mut s = tcp(addr)?;
    s.write_all(&connect_packet(&client_id(prefix)))?;
    let mut p = Packets::new(s, 64 * 1024);
    let r = p.expect(2, "CONNACK")?;
    if p.body(r).get(1) != Some(&0) {
        return Err(io::Error::other("CONNACK refused"));
    }
    Ok(p)
}

fn mqtt_subscribe(p: &mut Packets, topic: &str) -> io::Result<()> {
    p.s.write_all(&subscribe_packet(1, topic))?;
    p.expect(9, "SUBACK").map(|_| ())
}

/// The payload of a PUBLISH body (topic skipped; QoS 0 has no packet id).
fn publish_payload(body: &[u8]) -> &[u8] {
    let tlen = body.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize);
    body.get(2 + tlen..).unwrap_or_default()
}

fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn payload(seq: u64) -> [u8; 64] {
    let mut p = [b'.'; 64];
    p[..8].copy_from_slice(&now_ns().to_be_bytes());
    p[8..16].copy_from_slice(&seq.to_be_bytes());
    p
}

fn field(p: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(p.get(at..at + 8)?.try_into().ok()?))
}

// ---------------------------------------------------------------------------------------
// Measurements

/// Metric 1: connect, send 1 byte, read the echo, wait for the server's close.
/// Returns (connections per second, errors, first error).
fn conn_rate(addr: SocketAddr, threads: usize, dur: Duration) -> (f64, u64, Option<String>) {
    fn one(addr: SocketAddr) -> io::Result<()> {
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
    let start = Instant::now();
    let end = start + dur;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(move || {
                let (mut ok, mut err, mut first) = (0u64, 0u64, None);
                while Instant::now() < end {
                    match one(addr) {
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
    (ok as f64 / start.elapsed().as_secs_f64(), err, first)
}

/// Metric 2: `streams` connections push `total` bytes to the sink, which answers the count.
/// Returns (Gbit/s, error).
fn bulk(addr: SocketAddr, streams: usize, total: u64) -> (f64, Option<String>) {
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

struct MqttRun {
    rate: f64,
    sent: u64,
    received: u64,
    error: Option<String>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).map_or(f64::NAN, |&v| v as f64 / 1000.0)
}

/// Messages in flight (published, not yet received) at most, across publishers: a closed
/// loop, so the broker's queue stays bounded and the rate measured is the sustained one.
const WINDOW: u64 = 1000;

/// Metric 3a: publishers send QoS 0 messages through the proxy to the broker for `dur`;
/// one subscriber (also through the proxy) counts what arrives within the window.
fn mqtt_rate(addr: SocketAddr, publishers: usize, dur: Duration, topic: &str) -> MqttRun {
    let fail = |e: String| MqttRun { rate: f64::NAN, sent: 0, received: 0, error: Some(e) };
    let mut sub = match mqtt_open(addr, "sub").and_then(|mut p| mqtt_subscribe(&mut p, topic).map(|_| p)) {
        Ok(p) => p,
        Err(e) => return fail(format!("subscriber: {e}")),
    };
    let mut pubs = Vec::new();
    for _ in 0..publishers {
        match mqtt_open(addr, "pub") {
            Ok(p) => pubs.push(p.s),
            Err(e) => return fail(format!("publisher: {e}")),
        }
    }
    let sent_total = Arc::new(AtomicU64::new(0));
    let received_total = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let end = start + dur;
    let handles: Vec<_> = pubs
        .into_iter()
        .map(|mut s| {
            let topic = topic.to_string();
            let (sent_total, received_total) = (sent_total.clone(), received_total.clone());
            thread::spawn(move || -> (u64, Option<String>) {
                let mut sent = 0u64;
                let mut batch = Vec::with_capacity(4 * 1024);
                while Instant::now() < end {
                    if sent_total.load(Ordering::Acquire).saturating_sub(received_total.load(Ordering::Acquire))
                        > WINDOW
                    {
                        thread::sleep(Duration::from_micros(50));
                        continue;
                    }
                    batch.clear();
                    for _ in 0..32 {
                        publish_packet(&mut batch, &topic, &payload(sent));
                        sent += 1;
                    }
                    sent_total.fetch_add(32, Ordering::AcqRel);
                    if let Err(e) = s.write_all(&batch) {
                        return (sent - 32, Some(format!("publish: {e}")));
                    }
                }
                let _ = s.write_all(&DISCONNECT);
                (sent, None)
            })
        })
        .collect();
    let sub_done = done.clone();
    let received = received_total.clone();
    let reader = thread::spawn(move || -> (u64, u64, Option<String>) {
        let (mut in_window, mut total) = (0u64, 0u64);
        let mut last = Instant::now();
        let hard_end = end + Duration::from_secs(10);
        loop {
            match sub.next() {
                Ok(Some((first, _))) if first >> 4 == 3 => {
                    let now = Instant::now();
                    last = now;
                    total += 1;
                    received.fetch_add(1, Ordering::AcqRel);
                    if now <= end {
                        in_window += 1;
                    }
                }
                Ok(_) => {}
                Err(e) => return (in_window, total, Some(format!("subscriber: {e}"))),
            }
            let now = Instant::now();
            // Drained: publishers finished and nothing came for half a second.
            if (sub_done.load(Ordering::Acquire) && now.duration_since(last) > Duration::from_millis(500))
                || now > hard_end
            {
                break;
            }
        }
        let _ = sub.s.write_all(&DISCONNECT);
        (in_window, total, None)
    });
    let (mut sent, mut error) = (0, None);
    for h in handles {
        if let Ok((n, e)) = h.join() {
            sent += n;
            error = error.or(e);
        }
    }
    done.store(true, Ordering::Release);
    let Ok((in_window, received, e)) = reader.join() else {
        return fail("subscriber thread panicked".into());
    };
    MqttRun { rate: in_window as f64 / dur.as_secs_f64(), sent, received, error: error.or(e) }
}

/// Metric 3b: one message in flight at a time, publisher → broker → subscriber, both
/// through the proxy. Returns (p50 µs, p99 µs, error).
fn mqtt_latency(addr: SocketAddr, dur: Duration, topic: &str) -> (f64, f64, Option<String>) {
    let run = || -> io::Result<Vec<u64>> {
        let mut sub = mqtt_open(addr, "lsub")?;
        mqtt_subscribe(&mut sub, topic)?;
        let mut publ = mqtt_open(addr, "lpub")?;
        let mut lat = Vec::new();
        let end = Instant::now() + dur;
        let mut pkt = Vec::with_capacity(128);
        let mut seq = 0u64;
        while Instant::now() < end && lat.len() < 200_000 {
            pkt.clear();
            publish_packet(&mut pkt, topic, &payload(seq));
            publ.s.write_all(&pkt)?;
            let r = loop {
                let r = sub.expect(3, "PUBLISH")?;
                if field(publish_payload(sub.body(r.clone())), 8) == Some(seq) {
                    break r;
                }
            };
            if let Some(ts) = field(publish_payload(sub.body(r)), 0) {
                lat.push(now_ns().saturating_sub(ts));
            }
            seq += 1;
        }
        let _ = publ.s.write_all(&DISCONNECT);
        let _ = sub.s.write_all(&DISCONNECT);
        Ok(lat)
    };
    match run() {
        Ok(mut lat) => {
            lat.sort_unstable();
            (percentile(&lat, 0.5), percentile(&lat, 0.99), None)
        }
        Err(e) => (f64::NAN, f64::NAN, Some(e.to_string())),
    }
}

struct MemRun {
    before_kb: u64,
    after_kb: u64,
    per_conn: f64,
    opened: usize,
    alive: usize,
    error: Option<String>,
}

/// How many connections answer with a packet of type `kind`; the wait is bounded for all
/// of them together, not per connection.
fn answered(conns: &mut [Packets], kind: u8, what: &str, error: &mut Option<String>) -> usize {
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

/// Metric 4: `n` MQTT connections through a fresh proxy, CONNECT each, wait, read the
/// proxy's VmRSS before and after. Then PINGREQ each (they must all still answer) and
/// DISCONNECT (the broker closes first, so TIME_WAIT does not eat our ephemeral ports).
fn idle_memory(proxy: &mut Proxy, n: usize) -> MemRun {
    thread::sleep(Duration::from_millis(300));
    let before_kb = proxy.proc.rss_kb().unwrap_or(0);
    let addr = proxy.addrs.mqtt;
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
    let mut error = None;
    for h in handles {
        if let Ok((v, e)) = h.join() {
            conns.extend(v);
            error = error.or(e);
        }
    }
    let opened = conns.len();
    let connacked = answered(&mut conns, 2, "CONNACK", &mut error);
    thread::sleep(Duration::from_secs(1));
    let after_kb = proxy.proc.rss_kb().unwrap_or(0);
    for p in conns.iter_mut() {
        let _ = p.s.write_all(&PINGREQ);
    }
    let alive = answered(&mut conns, 13, "PINGRESP", &mut error);
    for p in conns.iter_mut() {
        let _ = p.s.write_all(&DISCONNECT);
    }
    // Bounded: the broker closes after DISCONNECT; wait for each end of stream briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in conns.iter_mut() {
        while Instant::now() < deadline {
            match p.next() {
                Ok(None) => {}
                _ => break,
            }
        }
    }
    drop(conns);
    let per_conn =
        if connacked > 0 { (after_kb.saturating_sub(before_kb) * 1024) as f64 / connacked as f64 } else { f64::NAN };
    MemRun { before_kb, after_kb, per_conn, opened, alive, error }
}

// ---------------------------------------------------------------------------------------
// Targets

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Direct,
    Haproxy,
    Hapx,
}

const TARGETS: [Target; 3] = [Target::Direct, Target::Haproxy, Target::Hapx];

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Haproxy => "haproxy",
            Target::Hapx => "hapx",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy)]
struct Addrs {
    echo: SocketAddr,
    sink: SocketAddr,
    mqtt: SocketAddr,
}

struct Proxy {
    proc: Proc,
    addrs: Addrs,
}

/// The configuration both proxies run; only the ports differ.
fn proxy_config(front: &Addrs, back: &Addrs, maxconn: u64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "global\n    nbthread 1\n    maxconn {maxconn}\n\n\
         defaults\n    mode tcp\n    maxconn {maxconn}\n    timeout connect 5s\n    timeout client 5m\n    timeout server 5m\n\n"
    );
    for (name, f, b) in
        [("echo", front.echo, back.echo), ("sink", front.sink, back.sink), ("mqtt", front.mqtt, back.mqtt)]
    {
        let _ = write!(s, "listen {name}\n    bind {f}\n    balance roundrobin\n    server s1 {b}\n\n");
    }
    s
}

struct Env {
    dir: PathBuf,
    backends: Addrs,
    nofile: u64,
    maxconn: u64,
    haproxy: Option<PathBuf>,
}

fn start_proxy(env: &Env, target: Target, tag: &str) -> Result<Proxy, String> {
    let addrs = Addrs { echo: loopback(free_port()), sink: loopback(free_port()), mqtt: loopback(free_port()) };
    let cfg = env.dir.join(format!("{tag}.cfg"));
    std::fs::write(&cfg, proxy_config(&addrs, &env.backends, env.maxconn)).map_err(|e| e.to_string())?;
    let bin = match (target, &env.haproxy) {
        (Target::Hapx, _) => quote(Path::new(env!("CARGO_BIN_EXE_hapx"))),
        (_, Some(haproxy)) => quote(haproxy),
        (_, None) => return Err("haproxy not found".into()),
    };
    let mut proc =
        Proc::spawn(&format!("{bin} -db -f {}", quote(&cfg)), env.nofile, env.dir.join(format!("{tag}.log")))?;
    proc.wait_listening(&[addrs.echo, addrs.sink, addrs.mqtt])?;
    Ok(Proxy { proc, addrs })
}

// ---------------------------------------------------------------------------------------
// Results

#[derive(Clone, Copy, PartialEq)]
enum Better {
    Higher,
    Lower,
}

struct Row {
    name: String,
    better: Better,
    runs: [Vec<f64>; 3],
}

impl Row {
    fn new(name: &str, better: Better) -> Row {
        Row { name: name.into(), better, runs: [Vec::new(), Vec::new(), Vec::new()] }
    }
    fn push(&mut self, t: Target, v: f64) {
        self.runs[t.index()].push(v);
    }
    fn range(&self, t: Target) -> Option<(f64, f64)> {
        let v = self.runs[t.index()].iter().copied().filter(|x| x.is_finite());
        v.fold(None, |acc, x| match acc {
            None => Some((x, x)),
            Some((lo, hi)) => Some((x.min(lo), x.max(hi))),
        })
    }
    /// Whether hapx's runs and HAProxy's (scaled by `factor`) overlap: a miss that the
    /// noise of this machine could explain.
    fn overlap(&self, factor: f64) -> bool {
        match (self.range(Target::Haproxy), self.range(Target::Hapx)) {
            (Some((hlo, hhi)), Some((xlo, xhi))) => xlo <= hhi * factor && hlo * factor <= xhi,
            _ => false,
        }
    }
    fn median(&self, t: Target) -> f64 {
        let mut v: Vec<f64> = self.runs[t.index()].iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }
}

fn fmt_num(v: f64) -> String {
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

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b != 0.0 {
        format!("{:.2}", a / b)
    } else {
        "—".into()
    }
}

fn table(out: &mut String, title: &str, rows: &[&Row], show_direct: bool) {
    let _ = writeln!(out, "\n### {title}\n");
    let _ = writeln!(out, "| | direct | haproxy | hapx | hapx/haproxy | hapx/direct |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let [d, h, x] = TARGETS.map(|t| r.median(t));
        let d = if show_direct { d } else { f64::NAN };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            fmt_num(d),
            fmt_num(h),
            fmt_num(x),
            ratio(x, h),
            ratio(x, d)
        );
    }
    for r in rows {
        let runs: Vec<String> = TARGETS
            .iter()
            .filter(|t| show_direct || **t != Target::Direct)
            .map(|t| {
                format!(
                    "{} [{}]",
                    t.name(),
                    r.runs[t.index()].iter().map(|v| fmt_num(*v)).collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        let _ = writeln!(out, "\n<sub>{} runs: {}</sub>", r.name, runs.join("; "));
    }
}

/// Goal line: hapx's median against HAProxy's (times `factor`).
fn goal(out: &mut String, what: &str, row: &Row, factor: f64) {
    let (h, x) = (row.median(Target::Haproxy), row.median(Target::Hapx));
    let met = if !(h.is_finite() && x.is_finite()) {
        "not measured"
    } else if match row.better {
        Better::Higher => x >= h * factor,
        Better::Lower => x <= h * factor,
    } {
        "**met**"
    } else if row.overlap(factor) {
        "not met (within the run-to-run spread)"
    } else {
        "not met"
    };
    let _ = writeln!(out, "| {what} | {} | {} | {} | {met} |", fmt_num(h), fmt_num(x), ratio(x, h));
}

/// Whether the broker still runs; if not, says so once (with its log) and stops MQTT runs.
fn broker_alive(broker: &mut Option<Proc>, notes: &mut Vec<String>) -> bool {
    let Some(b) = broker.as_mut() else { return false };
    if let Some(why) = b.exited() {
        notes.push(format!("mosquitto {why}; later MQTT runs skipped; log tail:\n```\n{}\n```", b.log_tail()));
        *broker = None;
        return false;
    }
    true
}

fn err_note(notes: &mut Vec<String>, t: Target, what: &str, e: Option<String>) {
    if let Some(e) = e {
        notes.push(format!("{} {what}: {e}", t.name()));
    }
}

// ---------------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we do not support.
    let s = Settings::from_env();
    let started = Instant::now();
    now_ns();
    let mut notes: Vec<String> = Vec::new();
    // Notes that are settings, not problems (problems keep the logs for a look).
    let mut settings_notes = 0;

    let dir = std::env::temp_dir().join(format!("hapx-rbench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }

    // File descriptors: a proxy holds two per connection, the bench one.
    let (soft, hard) = nofile_limits();
    let nofile = hard.min(200_000);
    let maxconn = ((nofile.saturating_sub(100)) / 2).min(50_000);
    let conns = s.conns.min(soft.saturating_sub(200) as usize).min(maxconn.saturating_sub(50) as usize);
    if conns < s.conns {
        notes.push(format!(
            "idle connections scaled down from {} to {conns}: open-file limit {soft} (soft) / {hard} (hard) here, \
             and a proxy needs two descriptors per connection (proxies get `ulimit -n {nofile}`, `maxconn {maxconn}`)",
            s.conns
        ));
        settings_notes += 1;
    }

    let echo = start_echo();
    let sink = start_sink();
    let (Ok(echo), Ok(sink)) = (echo, sink) else {
        eprintln!("cannot start the echo or sink server");
        std::process::exit(1);
    };

    // The broker.
    let mosq_port = free_port();
    let mut broker = None;
    if let Some(bin) = find_bin("mosquitto") {
        let conf = dir.join("mosquitto.conf");
        let text = format!(
            "listener {mosq_port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\n\
             set_tcp_nodelay true\nconnection_messages false\nlog_type error\nlog_type warning\n"
        );
        match std::fs::write(&conf, text)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                Proc::spawn(&format!("{} -c {}", quote(&bin), quote(&conf)), nofile, dir.join("mosquitto.log"))
            })
            .and_then(|mut p| p.wait_listening(&[loopback(mosq_port)]).map(|_| p))
        {
            Ok(p) => broker = Some(p),
            Err(e) => notes.push(format!("mosquitto did not start ({e}): MQTT metrics skipped")),
        }
    } else {
        notes.push("mosquitto not found: MQTT metrics skipped".into());
    }
    let mqtt_on = broker.is_some();

    let haproxy = find_bin("haproxy");
    let have_haproxy = haproxy.is_some();
    let env =
        Env { dir: dir.clone(), backends: Addrs { echo, sink, mqtt: loopback(mosq_port) }, nofile, maxconn, haproxy };
    if !have_haproxy {
        notes.push("haproxy not found: only direct and hapx are measured".into());
    }
    let mut proxies: [Option<Proxy>; 3] = [None, None, None];
    for t in [Target::Haproxy, Target::Hapx] {
        if t == Target::Haproxy && !have_haproxy {
            continue;
        }
        match start_proxy(&env, t, t.name()) {
            Ok(p) => proxies[t.index()] = Some(p),
            Err(e) => notes.push(format!("{} did not start: {e}", t.name())),
        }
    }
    let direct = Addrs { echo, sink, mqtt: loopback(mosq_port) };
    let addrs_of = |proxies: &mut [Option<Proxy>; 3], t: Target, notes: &mut Vec<String>| -> Option<Addrs> {
        if t == Target::Direct {
            return Some(direct);
        }
        let p = proxies[t.index()].as_mut()?;
        if let Some(why) = p.proc.exited() {
            notes.push(format!("{} {why} during the run; log tail:\n```\n{}\n```", t.name(), p.proc.log_tail()));
            proxies[t.index()] = None;
            return None;
        }
        Some(p.addrs)
    };
    let order = |round: usize| {
        let mut o = TARGETS;
        o.rotate_left(round % 3);
        o
    };
    // 1. Connection rate.
    eprintln!("[1/4] connection rate (at {:.0} s)", started.elapsed().as_secs_f64());
    let mut rate = Row::new("connections/s", Better::Higher);
    let mut rate_err = Row::new("failed connections", Better::Lower);
    for r in 0..s.rounds {
        for t in order(r) {
            let Some(a) = addrs_of(&mut proxies, t, &mut notes) else { continue };
            let (v, errs, first) = conn_rate(a.echo, s.clients, s.run_time());
            rate.push(t, v);
            rate_err.push(t, errs as f64);
            err_note(&mut notes, t, "connection-rate error", first);
            thread::sleep(Duration::from_millis(200));
        }
    }

    // 2. Bulk throughput.
    eprintln!("[2/4] bulk throughput (at {:.0} s)", started.elapsed().as_secs_f64());
    let mut gbps = Row::new("Gbit/s", Better::Higher);
    for r in 0..s.rounds {
        for t in order(r) {
            let Some(a) = addrs_of(&mut proxies, t, &mut notes) else { continue };
            let (v, e) = bulk(a.sink, s.streams, s.bulk_bytes);
            gbps.push(t, if e.is_some() { f64::NAN } else { v });
            err_note(&mut notes, t, "bulk error", e);
        }
    }

    // 3. MQTT rate and latency.
    let mut mrate = Row::new("messages/s delivered", Better::Higher);
    let mut mloss = Row::new("messages lost (%)", Better::Lower);
    let mut lp50 = Row::new("latency p50, one in flight (µs)", Better::Lower);
    let mut lp99 = Row::new("latency p99, one in flight (µs)", Better::Lower);
    if mqtt_on {
        eprintln!("[3/4] MQTT rate and latency (at {:.0} s)", started.elapsed().as_secs_f64());
        for r in 0..s.rounds {
            for t in order(r) {
                if !broker_alive(&mut broker, &mut notes) {
                    break;
                }
                let Some(a) = addrs_of(&mut proxies, t, &mut notes) else { continue };
                let run = mqtt_rate(a.mqtt, s.publishers, s.run_time(), &format!("bench/rate/{r}/{}", t.name()));
                mrate.push(t, run.rate);
                let lost = if run.sent > 0 {
                    100.0 * run.sent.saturating_sub(run.received) as f64 / run.sent as f64
                } else {
                    f64::NAN
                };
                mloss.push(t, lost);
                err_note(&mut notes, t, "MQTT rate error", run.error);
                let (p50, p99, e) = mqtt_latency(a.mqtt, s.run_time() / 2, &format!("bench/lat/{r}/{}", t.name()));
                lp50.push(t, p50);
                lp99.push(t, p99);
                err_note(&mut notes, t, "MQTT latency error", e);
            }
        }
    }
    // The long-running proxies are not needed any more; the memory runs use fresh ones.
    for p in proxies.iter_mut() {
        *p = None;
    }

    // 4. Memory per idle connection, fresh proxies.
    let mut mem = Row::new("bytes per idle connection", Better::Lower);
    let mut mem_before = Row::new("VmRSS before (KiB)", Better::Lower);
    let mut mem_after = Row::new(&format!("VmRSS with {conns} idle (KiB)"), Better::Lower);
    if mqtt_on {
        eprintln!(
            "[4/4] memory per idle connection ({conns} connections) (at {:.0} s)",
            started.elapsed().as_secs_f64()
        );
        for r in 0..s.rounds {
            for t in order(r) {
                if t == Target::Direct || (t == Target::Haproxy && !have_haproxy) {
                    continue;
                }
                if !broker_alive(&mut broker, &mut notes) {
                    break;
                }
                let mut p = match start_proxy(&env, t, &format!("{}-mem{r}", t.name())) {
                    Ok(p) => p,
                    Err(e) => {
                        notes.push(format!("{} (memory run) did not start: {e}", t.name()));
                        continue;
                    }
                };
                let m = idle_memory(&mut p, conns);
                if m.opened < conns || m.alive < conns {
                    notes.push(format!(
                        "{} memory run {r}: {} of {conns} connections opened, {} answered PINGREQ",
                        t.name(),
                        m.opened,
                        m.alive
                    ));
                }
                err_note(&mut notes, t, "memory-run error", m.error);
                if let Some(why) = p.proc.exited() {
                    notes.push(format!(
                        "{} {why} during memory run; log tail:\n```\n{}\n```",
                        t.name(),
                        p.proc.log_tail()
                    ));
                }
                mem.push(t, m.per_conn);
                mem_before.push(t, m.before_kb as f64);
                mem_after.push(t, m.after_kb as f64);
            }
        }
    }
    drop(broker);

    // Report (markdown, pasted as is into benches/README.md).
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Settings: {} rounds, interleaved (order rotates), medians; {} s per timed run; {} client threads; \
         {} bulk streams × {} MiB total; {} MQTT publishers, QoS 0, 64-byte payload, at most {WINDOW} messages in flight; {conns} idle connections; \
         `nbthread 1` for both proxies; {} CPUs; bench run took {:.0} s.",
        s.rounds,
        s.seconds,
        s.clients,
        s.streams,
        s.bulk_bytes / (1024 * 1024),
        s.publishers,
        thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64()
    );
    table(&mut out, "1. New connections (connect, 1 byte, echo, close)", &[&rate, &rate_err], true);
    table(&mut out, "2. Bulk throughput (to a sink)", &[&gbps], true);
    if mqtt_on {
        table(
            &mut out,
            "3. MQTT through mosquitto (publishers and subscriber both via the proxy)",
            &[&mrate, &mloss, &lp50, &lp99],
            true,
        );
        table(
            &mut out,
            "4. Resident memory per idle MQTT connection (proxy VmRSS)",
            &[&mem, &mem_before, &mem_after],
            false,
        );
    }
    let _ =
        writeln!(out, "\n### Goals\n\n| goal | haproxy | hapx | hapx/haproxy | verdict |\n|---|---:|---:|---:|---|");
    goal(&mut out, "connection rate ≥ HAProxy", &rate, 1.0);
    goal(&mut out, "bulk throughput ≥ HAProxy", &gbps, 1.0);
    if mqtt_on {
        goal(&mut out, "MQTT messages/s ≥ HAProxy", &mrate, 1.0);
        goal(&mut out, "MQTT latency p50 (one in flight) ≤ HAProxy", &lp50, 1.0);
        goal(&mut out, "MQTT latency p99 (one in flight) ≤ HAProxy", &lp99, 1.0);
        goal(&mut out, "memory per idle connection ≤ ½ HAProxy", &mem, 0.5);
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\n### Notes\n");
        for n in &notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    println!("{out}");
    if notes.len() == settings_notes {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("configurations and logs kept in {}", dir.display());
    }
}
