//! Shared helpers of the runtime tests: free loopback ports, processes killed on drop
//! (hapx, haproxy, mosquitto), small loopback servers on std threads, a fast PRNG and a
//! chunking-independent checksum. Every wait is bounded.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A loopback port nobody listens on right now (bound to port 0, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// A fresh directory under the target's test temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "rt-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether something listens on 127.0.0.1:port, read from /proc/net/tcp so that the probe
/// itself opens no connection (which would reach a server and skew the balancing).
/// Fails the test when `program` is missing: CI installs it, so a missing tool is a broken
/// setup, never a reason to pass.
pub fn need(program: &str) {
    assert!(have(program), "{program} is required by this test (.ci/run installs it)");
}

pub fn is_listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    let any = format!("00000000:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| {
        t.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && (f[1] == want || f[1] == any) && f[3] == "0A"
        })
    })
}

/// A child process killed (and reaped) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub stderr_path: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout/stderr into files of `dir` and waits until every port in
    /// `ports` listens (at most 10 s); panics with the process's stderr otherwise.
    pub fn start(name: &str, mut cmd: Command, dir: &Path, ports: &[u16]) -> Proc {
        let stderr_path = dir.join(format!("{name}.stderr"));
        let out = std::fs::File::create(dir.join(format!("{name}.stdout"))).expect("stdout file");
        let err = std::fs::File::create(&stderr_path).expect("stderr file");
        let child =
            cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let mut p = Proc { name: name.to_string(), child, stderr_path };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ports.iter().all(|&port| is_listening(port)) {
                return p;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("{name} exited early ({status}): {}", p.stderr());
            }
            if Instant::now() > deadline {
                panic!("{name} did not listen on {ports:?} within 10 s: {}", p.stderr());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const HAPX: &str = env!("CARGO_BIN_EXE_hapx");

/// Writes `cfg` into a fresh temp dir and runs `hapx -db -f` on it, waiting for `ports`.
/// `HAPX_TEST_PROXY=haproxy` runs another program instead, to check what the tests expect
/// against HAProxy itself.
pub fn start_hapx(cfg: &str, ports: &[u16]) -> Proc {
    match std::env::var("HAPX_TEST_PROXY") {
        Ok(program) if !program.is_empty() => start_proxy(&program, "proxy-under-test", cfg, ports),
        _ => start_proxy(HAPX, "hapx", cfg, ports),
    }
}

/// The same with HAProxy (the caller checks `have("haproxy")`).
pub fn start_haproxy(cfg: &str, ports: &[u16]) -> Proc {
    start_proxy("haproxy", "haproxy", cfg, ports)
}

fn start_proxy(program: &str, name: &str, cfg: &str, ports: &[u16]) -> Proc {
    let dir = temp_dir(name);
    let path = dir.join("test.cfg");
    std::fs::write(&path, cfg).expect("write cfg");
    let mut cmd = Command::new(program);
    cmd.arg("-db").arg("-f").arg(&path);
    Proc::start(name, cmd, &dir, ports)
}

/// A client connection to 127.0.0.1:port with read/write timeouts.
pub fn connect(port: u16, timeout: Duration) -> TcpStream {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(timeout)).expect("read timeout");
    s.set_write_timeout(Some(timeout)).expect("write timeout");
    s
}

/// What a read until the end saw.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Orderly close (FIN) after these bytes.
    Eof(Vec<u8>),
    /// Reset or another error after these bytes.
    Reset(Vec<u8>),
    /// Still open when the read timeout fired.
    Timeout(Vec<u8>),
}

impl End {
    pub fn data(&self) -> &[u8] {
        match self {
            End::Eof(d) | End::Reset(d) | End::Timeout(d) => d,
        }
    }
    pub fn closed(&self) -> bool {
        !matches!(self, End::Timeout(_))
    }
}

/// Reads until EOF, error or the socket's read timeout.
pub fn read_to_end(s: &mut TcpStream) -> End {
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return End::Eof(data),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return End::Timeout(data)
            }
            Err(_) => return End::Reset(data),
        }
    }
}

/// Reads exactly `n` bytes or fails (the socket's read timeout bounds the wait).
pub fn read_n(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v)?;
    Ok(v)
}

/// Polls `f` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// xorshift64*: fast, deterministic random numbers.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// In `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// A 64-bit checksum of a byte stream that does not depend on how the stream was chunked:
/// words of 8 bytes are mixed in, a partial word waits for the next bytes.
#[derive(Clone, Debug, Default)]
pub struct Sum {
    h: u64,
    pending: [u8; 8],
    npending: usize,
    pub len: u64,
}

impl Sum {
    fn mix(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29) ^ 0xCBF2_9CE4_8422_2325;
    }
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.npending > 0 {
            let take = (8 - self.npending).min(data.len());
            self.pending[self.npending..self.npending + take].copy_from_slice(&data[..take]);
            self.npending += take;
            data = &data[take..];
            if self.npending < 8 {
                return;
            }
            let w = u64::from_le_bytes(self.pending);
            self.mix(w);
            self.npending = 0;
        }
        let mut words = data.chunks_exact(8);
        for c in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.mix(u64::from_le_bytes(a));
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.npending = rest.len();
    }
    /// (length, checksum).
    pub fn finish(&self) -> (u64, u64) {
        let mut s = self.clone();
        let mut last = [0u8; 8];
        last[..s.npending].copy_from_slice(&s.pending[..s.npending]);
        s.mix(u64::from_le_bytes(last) ^ (s.npending as u64) << 56);
        s.mix(s.len);
        (s.len, s.h)
    }
}

pub fn sum_of(data: &[u8]) -> (u64, u64) {
    let mut s = Sum::default();
    s.update(data);
    s.finish()
}

/// A loopback server on std threads: each accepted connection goes to `handler` in its own
/// thread. Counts connections accepted and open; stops accepting when dropped.
pub struct Server {
    pub port: u16,
    pub accepted: Arc<AtomicU64>,
    pub open: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start<F>(handler: F) -> Server
    where
        F: Fn(TcpStream, u64) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind server");
        Self::start_on(listener, handler)
    }

    pub fn start_on<F>(listener: TcpListener, handler: F) -> Server
    where
        F: Fn(TcpStream, u64) + Send + Sync + 'static,
    {
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let accepted = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (a, o, st) = (accepted.clone(), open.clone(), stop.clone());
        thread::spawn(move || {
            while !st.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                        let _ = s.set_write_timeout(Some(Duration::from_secs(60)));
                        let n = a.fetch_add(1, Ordering::AcqRel);
                        o.fetch_add(1, Ordering::AcqRel);
                        let (h, o2) = (handler.clone(), o.clone());
                        thread::spawn(move || {
                            h(s, n);
                            o2.fetch_sub(1, Ordering::AcqRel);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Server { port, accepted, open, stop }
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Acquire)
    }
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Echoes everything back in reads of random sizes, then closes after the client's FIN.
pub fn echo_handler(mut s: TcpStream, n: u64) {
    let mut rng = Rng::new(0xEC40 + n);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let want = rng.range(1, buf.len());
        match s.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                if s.write_all(&buf[..k]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = s.shutdown(Shutdown::Write);
}

/// A server that sends its tag (e.g. "s1\n") on accept, then waits for the client's end.
pub fn tag_server(tag: &str) -> Server {
    let tag = tag.to_string();
    Server::start(move |mut s, _| {
        let _ = s.write_all(tag.as_bytes());
        let mut buf = [0u8; 4096];
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
        }
    })
}

/// A sink that reads until EOF and reports (length, checksum) per connection.
pub fn sink_server() -> (Server, mpsc::Receiver<(u64, u64)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let srv = Server::start(move |mut s, _| {
        let mut sum = Sum::default();
        let mut buf = vec![0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => sum.update(&buf[..k]),
                Err(_) => {
                    // A reset: report what came, marked by an impossible length bit.
                    let (l, h) = sum.finish();
                    let _ = tx.lock().map(|t| t.send((l | 1 << 63, h)));
                    return;
                }
            }
        }
        let _ = tx.lock().map(|t| t.send(sum.finish()));
    });
    (srv, rx)
}

/// `defaults` of the test configs: tcp, and timeouts long enough not to fire by accident.
pub const DEFAULTS: &str =
    "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n";

/// The command prefix that cuts name resolution off, as `corpus/oracle.sh` does: a private
/// mount namespace whose /etc/resolv.conf names only 127.0.0.1. Empty when this machine does
/// not allow `unshare -m` (the host's resolver is then used).
pub fn no_dns_wrapper() -> &'static [String] {
    static WRAP: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    WRAP.get_or_init(|| {
        let conf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("no-dns-resolv-{}.conf", std::process::id()));
        if std::fs::write(&conf, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n").is_err() {
            return Vec::new();
        }
        let probe = Command::new("unshare")
            .args(["-m", "sh", "-c", "mount --bind \"$1\" /etc/resolv.conf", "sh"])
            .arg(&conf)
            .output();
        match probe {
            Ok(o) if o.status.success() => vec![
                "unshare".into(),
                "-m".into(),
                "sh".into(),
                "-c".into(),
                "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"".into(),
                conf.to_string_lossy().into_owned(),
            ],
            _ => {
                eprintln!("note: unshare -m not permitted; using the host's resolver");
                Vec::new()
            }
        }
    })
}

/// oracle.sh's normalization of one line: `[ALERT]`/`[WARNING]` only, the `(pid) :` part
/// removed, whitespace runs collapsed.
pub fn normalize_line(line: &str) -> Option<String> {
    let tag = ["[ALERT]", "[WARNING]"].into_iter().find(|t| line.starts_with(t))?;
    let rest = line.get(tag.len()..)?.trim_start();
    let rest = strip_pid(rest).unwrap_or(rest);
    Some(format!("{tag} {rest}").split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Removes a leading `(1234) :` (with any blanks).
fn strip_pid(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('(')?;
    let close = inner.find(')')?;
    if close == 0 || !inner.get(..close)?.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    inner.get(close + 1..)?.trim_start().strip_prefix(':').map(str::trim_start)
}

/// Starts a rumqttd broker in this process (MQTT 3.1.1 on 127.0.0.1:port); it lives as long
/// as the test process.
pub fn rumqttd(port: u16) {
    let listen: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = rumqttd::ServerSettings {
        name: format!("v4-{port}"),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60000,
            max_payload_size: 20480,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 10010,
            max_outgoing_packet_count: 200,
            max_segment_size: 104_857_600,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(std::collections::HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };
    thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        let _ = broker.start();
    });
    assert!(wait_until(Duration::from_secs(10), || is_listening(port)), "rumqttd on {port} did not start");
}

// ---------------------------------------------------------------------------------------------
// Fault tests: CPU share from /proc, fd limits, mosquitto brokers, proxies with a raised
// open-files limit.

/// utime + stime of a whole process (all its threads), in clock ticks, from /proc/PID/stat.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // The command name (field 2) may hold blanks; the fields after its closing ')' are plain.
    let rest = &stat[stat.rfind(')').expect("comm in /proc/PID/stat") + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': field 3 (state) is f[0], so utime (14) is f[11] and stime (15) is f[12].
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

/// The unit of /proc/PID/stat's CPU times (`getconf CLK_TCK`; 100 if it cannot be read).
pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .filter(|&hz| hz > 0.0)
        .unwrap_or(100.0)
}

/// The share of one core (in percent) that each process of `pids` used over the same
/// `window`: CPU ticks spent divided by the ticks of wall time elapsed. A measurement of load,
/// not a duration.
pub fn cpu_percent(pids: &[u32], window: Duration) -> Vec<f64> {
    let hz = clock_ticks_per_second();
    let (t0, c0) = (Instant::now(), pids.iter().map(|&p| cpu_ticks(p)).collect::<Vec<_>>());
    thread::sleep(window);
    let (t1, c1) = (Instant::now(), pids.iter().map(|&p| cpu_ticks(p)).collect::<Vec<_>>());
    let wall = hz * (t1 - t0).as_secs_f64();
    c0.iter().zip(&c1).map(|(a, b)| (b - a) as f64 * 100.0 / wall).collect()
}

/// Raises this process's soft open-files limit to its hard limit; returns the new limit.
pub fn raise_nofile() -> u64 {
    // The crate's own wrappers: `unsafe` lives in src/runtime/sys.rs only.
    let (_, hard) = hapx::runtime::sys::nofile_limit().expect("getrlimit");
    hapx::runtime::sys::set_nofile_limit(hard).expect("setrlimit");
    hapx::runtime::sys::nofile_limit().expect("getrlimit").0
}

/// A command that runs `program args...` under `sh` with the open-files limit set to `nofile`
/// first (`exec`, so the child's pid is the program's).
pub fn with_nofile(nofile: u64, program: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\"")).arg(program);
    cmd
}

/// A mosquitto broker on a free loopback port (anonymous, no persistence, `extra` appended to
/// its config), run with the open-files limit `nofile` when given. Panics when mosquitto is
/// not installed: a test that needs it fails without it.
pub fn start_mosquitto(tag: &str, extra: &str, nofile: Option<u64>) -> (Proc, u16) {
    assert!(have("mosquitto"), "mosquitto is not installed (apt-get install mosquitto)");
    let port = free_port();
    let dir = temp_dir(tag);
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra}"))
        .expect("mosquitto conf");
    let mut cmd = match nofile {
        Some(n) => with_nofile(n, "mosquitto"),
        None => Command::new("mosquitto"),
    };
    cmd.arg("-c").arg(&conf);
    (Proc::start(tag, cmd, &dir, &[port]), port)
}

/// `start_hapx`/`start_haproxy` with the open-files limit `nofile` (`HAPX_TEST_PROXY` is
/// honoured as by `start_hapx` when `haproxy_side` is false).
pub fn start_proxy_nofile(haproxy_side: bool, cfg: &str, ports: &[u16], nofile: u64) -> Proc {
    let (program, name) = match std::env::var("HAPX_TEST_PROXY") {
        _ if haproxy_side => ("haproxy".to_string(), "haproxy"),
        Ok(p) if !p.is_empty() => (p, "proxy-under-test"),
        _ => (HAPX.to_string(), "hapx"),
    };
    let dir = temp_dir(name);
    let path = dir.join("test.cfg");
    std::fs::write(&path, cfg).expect("write cfg");
    let mut cmd = with_nofile(nofile, &program);
    cmd.arg("-db").arg("-f").arg(&path);
    Proc::start(name, cmd, &dir, ports)
}
