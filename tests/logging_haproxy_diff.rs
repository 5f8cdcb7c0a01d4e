//! Differential test: real haproxy 2.6 logs TCP sessions over UDP syslog (one `log` line per
//! header format) and on stdout; we rebuild each session's SessionLog from what haproxy printed
//! and check that our headers and tcplog lines are the same bytes, digits of times and pids
//! aside. Skipped with a note when haproxy is not installed.

use hapx::logging::{
    format_header, format_tcplog, session_severity, should_log, HeaderMeta, SessionLog, Severity, SyslogFormat,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const FORMATS: [Option<&str>; 9] = [
    None,
    Some("local"),
    Some("rfc3164"),
    Some("rfc5424"),
    Some("priority"),
    Some("short"),
    Some("timed"),
    Some("iso"),
    Some("raw"),
];

/// Kills and reaps the haproxy child however the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stops the echo server thread however the test ends.
struct StopFlag(Arc<AtomicBool>);

impl Drop for StopFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn haproxy_available() -> bool {
    Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A loopback TCP echo server that stops on its flag or after 20 s.
fn echo_server(stop: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut c, _)) => {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 || c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    port
}

fn connect_with_retry(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => panic!("haproxy did not listen: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Receives datagrams until `count` arrived or `wait` passed.
fn receive(sock: &UdpSocket, count: usize, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while out.len() < count && Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    out
}

fn mask_digits(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect()
}

fn split2(s: &str, sep: char) -> (&str, &str) {
    s.split_once(sep).unwrap_or_else(|| panic!("no '{sep}' in {s:?}"))
}

fn nums(s: &str) -> Vec<i64> {
    s.trim_start_matches('+').split('/').map(|n| n.trim_start_matches('+').parse().unwrap()).collect()
}

/// Rebuilds a SessionLog from a tcplog line as haproxy printed it (the date is not parsed:
/// callers compare with dates masked).
fn parse_tcplog(line: &str) -> SessionLog {
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 9, "tcplog has 9 fields: {line:?}");
    let client: SocketAddr = f[0].parse().unwrap();
    let (backend, server) = split2(f[3], '/');
    let mut s = SessionLog::new(client, SystemTime::now(), f[2], backend);
    s.server = (server != "<NOSRV>").then(|| server.to_string());
    let t = nums(f[4]);
    (s.tw_ms, s.tc_ms, s.tt_ms) = (t[0], t[1], t[2]);
    s.bytes_read = f[5].parse().unwrap();
    s.term = f[6].as_bytes().try_into().unwrap();
    let c = nums(f[7]);
    s.redispatched = f[7].rsplit('/').next().unwrap().starts_with('+');
    (s.actconn, s.feconn, s.beconn, s.srv_conn, s.retries) =
        (c[0] as u32, c[1] as u32, c[2] as u32, c[3] as u32, c[4] as u32);
    let q = nums(f[8]);
    (s.srv_queue, s.backend_queue) = (q[0] as u32, q[1] as u32);
    s
}

fn masked_date(line: &str) -> String {
    let (head, rest) = split2(line, '[');
    let (_, tail) = split2(rest, ']');
    format!("{head}[DATE]{tail}")
}

/// Checks the datagrams one session produced, one per entry of FORMATS, against our headers
/// and tcplog line. Returns the rebuilt SessionLog.
fn check_session(datagrams: &[String], pid: u32, level: Severity) -> SessionLog {
    assert_eq!(datagrams.len(), FORMATS.len(), "{datagrams:#?}");
    // The raw target's datagram is the bare line.
    let body = datagrams[8].strip_suffix('\n').expect("LF ends a datagram");
    let s = parse_tcplog(body);
    let ours = format_tcplog(&s);
    assert_eq!(masked_date(&ours), masked_date(body));
    assert_eq!(mask_digits(&ours), mask_digits(body), "date layout differs");
    let meta = HeaderMeta { tag: "haproxy".to_string(), pid, hostname: None };
    for (dgram, name) in datagrams.iter().zip(FORMATS) {
        let header = dgram
            .strip_suffix(&format!("{body}\n"))
            .unwrap_or_else(|| panic!("same line under every header: {dgram:?}"));
        let format = name.map(|n| SyslogFormat::from_name(n).unwrap());
        let mine = format_header(format, 16, level, SystemTime::now(), &meta);
        assert_eq!(mask_digits(&mine), mask_digits(header), "format {name:?}");
        // priorities and pid are not masked here
        if header.starts_with('<') {
            assert_eq!(split2(&mine, '>').0, split2(header, '>').0, "{name:?}");
        }
        if header.contains("haproxy") {
            assert!(header.contains(&pid.to_string()), "pid in {header:?}");
        }
    }
    s
}

#[test]
fn tcplog_lines_and_headers_match_haproxy() {
    assert!(haproxy_available(), "haproxy is required by this test (.ci/run installs it)");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let log_port = udp.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopFlag(stop.clone());
    let echo_port = echo_server(stop);
    let dead_port = free_port();
    let (fe, fe_null, fe_err) = (free_port(), free_port(), free_port());

    let mut cfg = String::from("global\n");
    for f in FORMATS {
        let fmt = f.map(|n| format!("format {n} ")).unwrap_or_default();
        cfg += &format!("  log 127.0.0.1:{log_port} {fmt}local0\n");
    }
    cfg += "  log stdout format raw local0\n";
    cfg += &format!(
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 3s\n  timeout server 3s\n  log global\n  option tcplog\n\
         frontend fe\n  bind 127.0.0.1:{fe}\n  default_backend be\n\
         frontend fe_null\n  bind 127.0.0.1:{fe_null}\n  option dontlognull\n  default_backend be\n\
         frontend fe_err\n  bind 127.0.0.1:{fe_err}\n  option log-separate-errors\n  default_backend be_dead\n\
         backend be\n  server s1 127.0.0.1:{echo_port}\n\
         backend be_dead\n  retries 0\n  server dead 127.0.0.1:{dead_port}\n"
    );
    let dir = std::env::temp_dir().join(format!("hapx-logdiff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("haproxy.cfg");
    std::fs::write(&cfg_path, &cfg).unwrap();

    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    let pid = proc.0.id();

    // Session 1: N bytes echoed through haproxy.
    const N: usize = 1500;
    let mut c = connect_with_retry(fe);
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let client = c.local_addr().unwrap();
    c.write_all(&[b'x'; N]).unwrap();
    let mut got = 0;
    let mut buf = [0u8; 4096];
    while got < N {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "echo ended early");
        got += n;
    }
    drop(c);
    let first = receive(&udp, FORMATS.len(), Duration::from_secs(8));
    let s = check_session(&first, pid, Severity::Info);
    assert_eq!(s.client, client);
    assert_eq!((s.frontend.as_str(), s.backend.as_str()), ("fe", "be"));
    assert_eq!(s.server.as_deref(), Some("s1"));
    assert_eq!(s.bytes_read, N as u64);
    assert_eq!(&s.term, b"--");
    assert!(s.tc_ms >= 0 && s.tt_ms >= 0);

    // Session 2: nothing sent, dontlognull: no line. Session 3: refused server, err level.
    drop(connect_with_retry(fe_null));
    thread::sleep(Duration::from_millis(300));
    let c = connect_with_retry(fe_err);
    let client = c.local_addr().unwrap();
    let mut sink = Vec::new();
    let mut c = c;
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = c.read_to_end(&mut sink);
    let mut second = receive(&udp, FORMATS.len(), Duration::from_secs(8));
    // anything more (a line for fe_null would have come first) within a short while
    second.extend(receive(&udp, 1, Duration::from_millis(300)));
    assert!(second.iter().all(|d| !d.contains(" fe_null ")), "dontlognull frontend logged: {second:#?}");
    let mut s = check_session(&second, pid, Severity::Err);
    assert_eq!(s.client, client);
    assert_eq!(&s.term, b"SC");
    assert_eq!(s.tc_ms, -1);
    s.bytes_uploaded = 0;
    assert_eq!(session_severity(&s, true), Severity::Err);
    assert!(!should_log(&s, true));

    // stdout got the same lines, raw.
    let _ = proc.0.kill();
    let _ = proc.0.wait();
    let mut out = String::new();
    if let Some(mut so) = proc.0.stdout.take() {
        let _ = so.read_to_string(&mut out);
    }
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(format!("{}\n", lines[0]), first[8]);
    assert_eq!(format!("{}\n", lines[1]), second[8]);
    let _ = std::fs::remove_dir_all(&dir);
}
