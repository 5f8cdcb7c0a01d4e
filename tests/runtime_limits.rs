//! Limits and timeouts: server maxconn queues, `timeout queue`, every other timeout, connect
//! errors with retries and redispatch, global and proxy maxconn. Loopback only: a "blackhole"
//! server is a listener whose accept queue is full (its SYNs are dropped).
mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Reads the server's tag within `within`; None if nothing came.
fn tag(c: &mut TcpStream, within: Duration) -> Option<String> {
    c.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 64];
    match c.read(&mut buf) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

/// Waits for the end of a connection; returns how long it took, or None if still open.
fn closed_within(c: &mut TcpStream, within: Duration) -> Option<(Duration, End)> {
    c.set_read_timeout(Some(within)).expect("timeout");
    let started = Instant::now();
    let end = read_to_end(c);
    end.closed().then(|| (started.elapsed(), end))
}

#[test]
fn full_server_queues_the_next_client_until_a_slot_frees() {
    let s1 = tag_server("s1\n");
    let port = free_port();
    let cfg = format!(
        "{DEFAULTS}    timeout queue 10s\nlisten q\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{} maxconn 1\n",
        s1.port
    );
    let _h = start_hapx(&cfg, &[port]);
    let mut a = connect(port, Duration::from_secs(5));
    assert_eq!(tag(&mut a, Duration::from_secs(5)).as_deref(), Some("s1\n"));
    let mut b = connect(port, Duration::from_secs(5));
    assert_eq!(tag(&mut b, Duration::from_millis(500)), None, "second client served beyond maxconn 1");
    assert_eq!(s1.accepted(), 1);
    drop(a);
    assert_eq!(tag(&mut b, Duration::from_secs(5)).as_deref(), Some("s1\n"), "queued client not served");
    assert_eq!(s1.accepted(), 2);
}

#[test]
fn queue_timeout_closes_the_waiting_client() {
    let s1 = tag_server("s1\n");
    let port = free_port();
    let cfg = format!(
        "{DEFAULTS}    timeout queue 400ms\nlisten q\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{} maxconn 1\n",
        s1.port
    );
    let _h = start_hapx(&cfg, &[port]);
    let mut a = connect(port, Duration::from_secs(5));
    assert_eq!(tag(&mut a, Duration::from_secs(5)).as_deref(), Some("s1\n"));
    let mut b = connect(port, Duration::from_secs(5));
    let (after, end) =
        closed_within(&mut b, Duration::from_secs(5)).expect("queued client not closed by timeout queue");
    assert!(end.data().is_empty(), "queued client got data: {:?}", end.data());
    assert!(after >= Duration::from_millis(300) && after < Duration::from_secs(3), "closed after {after:?}");
    assert_eq!(s1.accepted(), 1);
}

/// A listener whose accept queue is full, so that new SYNs are dropped and connects hang.
/// Python makes the backlog-0 socket (std has no backlog parameter); the test fills it.
struct Blackhole {
    child: Child,
    port: u16,
    _fill: Vec<TcpStream>,
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn blackhole() -> Option<Blackhole> {
    need("python3");
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(120)\n",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).ok()? == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let port: u16 = String::from_utf8_lossy(&line).trim().parse().ok()?;
    let mut bh = Blackhole { child, port, _fill: Vec::new() };
    // Fill the accept queue until a connect times out.
    let addr = ([127, 0, 0, 1], port).into();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => bh._fill.push(s),
            Err(_) => return Some(bh),
        }
    }
    None
}

#[test]
fn connect_timeout_fires_with_retries() {
    let Some(bh) = blackhole() else { return };
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 300ms\n    timeout client 30s\n    timeout server 30s\n    retries 2\nlisten ct\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{}\n",
        bh.port
    );
    let _h = start_hapx(&cfg, &[port]);
    let mut c = connect(port, Duration::from_secs(5));
    let (after, end) = closed_within(&mut c, Duration::from_secs(8)).expect("client not closed after connect timeouts");
    assert!(end.data().is_empty());
    // Three attempts of 300 ms each (HAProxy may add a turnaround pause between them).
    assert!(after >= Duration::from_millis(800) && after < Duration::from_secs(6), "closed after {after:?}");
}

#[test]
fn connection_refused_everywhere_closes_the_client_after_retries() {
    let dead = free_port();
    let port = free_port();
    let cfg =
        format!("{DEFAULTS}    retries 2\nlisten rf\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{dead}\n");
    let _h = start_hapx(&cfg, &[port]);
    let mut c = connect(port, Duration::from_secs(5));
    let (_, end) = closed_within(&mut c, Duration::from_secs(8)).expect("client not closed");
    assert!(end.data().is_empty());
}

#[test]
fn redispatch_moves_a_refused_connection_to_a_live_server() {
    let dead = free_port();
    let live = tag_server("live\n");
    let port = free_port();
    let cfg = format!(
        "{DEFAULTS}    retries 1\n    option redispatch\nlisten rd\n    bind 127.0.0.1:{port}\n    balance roundrobin\n    server dead 127.0.0.1:{dead}\n    server live 127.0.0.1:{}\n",
        live.port
    );
    let _h = start_hapx(&cfg, &[port]);
    for i in 0..4 {
        let mut c = connect(port, Duration::from_secs(5));
        assert_eq!(tag(&mut c, Duration::from_secs(5)).as_deref(), Some("live\n"), "connection {i}");
    }
}

fn timeout_cfg(port: u16, server: u16, timeouts: &str) -> String {
    format!("defaults\n    mode tcp\n    timeout connect 5s\n{timeouts}listen t\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{server}\n")
}

/// A server that keeps the connection open and silent until the peer closes.
fn silent_server() -> Server {
    Server::start(|mut s, _| {
        let mut buf = [0u8; 4096];
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
        }
    })
}

#[test]
fn client_timeout_disconnects_an_idle_client() {
    let srv = silent_server();
    let port = free_port();
    let _h = start_hapx(&timeout_cfg(port, srv.port, "    timeout client 400ms\n    timeout server 30s\n"), &[port]);
    let mut c = connect(port, Duration::from_secs(5));
    let (after, _) = closed_within(&mut c, Duration::from_secs(5)).expect("idle client not disconnected");
    assert!(after >= Duration::from_millis(300) && after < Duration::from_secs(3), "closed after {after:?}");
    assert!(wait_until(Duration::from_secs(3), || srv.open() == 0), "server side left open");
}

/// A silent server that reports everything it received once the peer closes, and when.
fn recording_server() -> (Server, std::sync::mpsc::Receiver<(Vec<u8>, Duration)>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let srv = Server::start(move |mut s, _| {
        let started = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        let _ = tx.lock().map(|t| t.send((got, started.elapsed())));
    });
    (srv, rx)
}

#[test]
fn server_timeout_closes_an_idle_server_towards_the_client() {
    let srv = silent_server();
    let port = free_port();
    let _h = start_hapx(&timeout_cfg(port, srv.port, "    timeout client 30s\n    timeout server 400ms\n"), &[port]);
    let mut c = connect(port, Duration::from_secs(5));
    let (after, _) = closed_within(&mut c, Duration::from_secs(5)).expect("idle session not closed by timeout server");
    assert!(after >= Duration::from_millis(300) && after < Duration::from_secs(3), "closed after {after:?}");
    drop(c);
    assert!(wait_until(Duration::from_secs(3), || srv.open() == 0), "server side left open after the client left");
}

#[test]
fn server_timeout_leaves_the_client_to_server_direction_open_like_haproxy() {
    // HAProxy 2.6: `timeout server` expiring shuts the server's read side and sends a FIN to
    // the client; the client can still send to the server until it closes.
    let (srv, rx) = recording_server();
    let port = free_port();
    let _h = start_hapx(&timeout_cfg(port, srv.port, "    timeout client 30s\n    timeout server 400ms\n"), &[port]);
    let mut c = connect(port, Duration::from_secs(5));
    let mut b = [0u8; 1];
    assert_eq!(c.read(&mut b).expect("EOF from timeout server"), 0);
    c.write_all(b"late words\n").expect("write after the server timeout");
    c.shutdown(Shutdown::Write).expect("shutdown");
    let (got, _) = rx.recv_timeout(Duration::from_secs(5)).expect("server end");
    assert_eq!(got, b"late words\n");
}

#[test]
fn tunnel_timeout_replaces_client_and_server_timeouts() {
    let srv = Server::start(echo_handler);
    let port = free_port();
    let cfg =
        timeout_cfg(port, srv.port, "    timeout client 300ms\n    timeout server 300ms\n    timeout tunnel 1500ms\n");
    let _h = start_hapx(&cfg, &[port]);
    let mut c = connect(port, Duration::from_secs(5));
    c.write_all(b"x").expect("write");
    assert_eq!(read_n(&mut c, 1).expect("echo"), b"x");
    // Idle longer than client/server timeouts: still open thanks to the tunnel timeout.
    thread::sleep(Duration::from_millis(800));
    c.write_all(b"y").expect("write after 800 ms idle");
    assert_eq!(read_n(&mut c, 1).expect("echo after 800 ms idle"), b"y");
    let (after, _) = closed_within(&mut c, Duration::from_secs(5)).expect("tunnel timeout did not fire");
    assert!(after >= Duration::from_millis(1200) && after < Duration::from_secs(4), "closed after {after:?}");
}

// As HAProxy 2.6 applies them (checked against haproxy with HAPX_TEST_PROXY=haproxy):
// `timeout client-fin` replaces the client's timeout once the proxy has shut its write side
// towards the client (the server closed first), `timeout server-fin` the server's once the
// proxy has shut its write side towards the server (the client closed first).

#[test]
fn client_fin_timeout_ends_a_client_that_does_not_close_after_the_server() {
    // The server shuts its write side at once and waits; the client sees EOF and stays.
    let (srv, rx) = recording_server_after_fin();
    let port = free_port();
    let cfg =
        timeout_cfg(port, srv.port, "    timeout client 30s\n    timeout server 30s\n    timeout client-fin 400ms\n");
    let _h = start_hapx(&cfg, &[port]);
    let mut c = connect(port, Duration::from_secs(5));
    let mut b = [0u8; 1];
    assert_eq!(c.read(&mut b).expect("EOF from the server"), 0);
    let (closed, after) = rx.recv_timeout(Duration::from_secs(10)).expect("server thread");
    assert!(closed, "session still open 5 s after the server's FIN: timeout client-fin did not fire");
    assert!(after >= Duration::from_millis(300) && after < Duration::from_secs(3), "closed after {after:?}");
}

/// A server that shuts its write side at once, then reports whether (and when) its peer
/// closed within 5 s.
fn recording_server_after_fin() -> (Server, std::sync::mpsc::Receiver<(bool, Duration)>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let srv = Server::start(move |mut s, _| {
        let _ = s.shutdown(Shutdown::Write);
        let started = Instant::now();
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = [0u8; 64];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    break false
                }
                Err(_) => break true,
            }
        };
        let _ = tx.lock().map(|t| t.send((closed, started.elapsed())));
    });
    (srv, rx)
}

#[test]
fn server_fin_timeout_ends_a_server_that_does_not_close_after_the_client() {
    // The client half-closes; the server reads to EOF and stays open, silent.
    let srv = silent_server_after_eof();
    let port = free_port();
    let cfg =
        timeout_cfg(port, srv.port, "    timeout client 30s\n    timeout server 30s\n    timeout server-fin 400ms\n");
    let _h = start_hapx(&cfg, &[port]);
    let mut c = connect(port, Duration::from_secs(5));
    c.write_all(b"bye").expect("write");
    c.shutdown(Shutdown::Write).expect("shutdown");
    let (after, _) = closed_within(&mut c, Duration::from_secs(5)).expect("server kept past server-fin");
    assert!(after >= Duration::from_millis(300) && after < Duration::from_secs(3), "closed after {after:?}");
}

/// A server that reads until the client's FIN, then stays open and silent for 6 s.
fn silent_server_after_eof() -> Server {
    Server::start(|mut s, _| {
        let mut buf = [0u8; 4096];
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
        }
        // Stay open and silent for longer than any timeout under test.
        thread::sleep(Duration::from_secs(6));
    })
}

fn maxconn_case(cfg_for: impl Fn(u16, u16) -> String) {
    let s1 = tag_server("s1\n");
    let port = free_port();
    let _h = start_hapx(&cfg_for(port, s1.port), &[port]);
    let mut a = connect(port, Duration::from_secs(5));
    assert_eq!(tag(&mut a, Duration::from_secs(5)).as_deref(), Some("s1\n"));
    // The second connection completes in the kernel's backlog but is not served.
    let mut b = connect(port, Duration::from_secs(5));
    assert_eq!(tag(&mut b, Duration::from_millis(600)), None, "connection served beyond maxconn");
    assert_eq!(s1.accepted(), 1);
    drop(a);
    assert_eq!(tag(&mut b, Duration::from_secs(5)).as_deref(), Some("s1\n"), "waiting connection not served");
}

#[test]
fn global_maxconn_blocks_accepting_beyond_the_limit() {
    maxconn_case(|port, srv| {
        format!("global\n    maxconn 1\n{DEFAULTS}listen m\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{srv}\n")
    });
}

#[test]
fn proxy_maxconn_blocks_accepting_beyond_the_limit() {
    maxconn_case(|port, srv| {
        format!("{DEFAULTS}listen m\n    bind 127.0.0.1:{port}\n    maxconn 1\n    server s1 127.0.0.1:{srv}\n")
    });
}

#[test]
fn frontend_maxconn_blocks_accepting_beyond_the_limit() {
    maxconn_case(|port, srv| {
        format!("{DEFAULTS}frontend f\n    bind 127.0.0.1:{port}\n    maxconn 1\n    default_backend b\nbackend b\n    server s1 127.0.0.1:{srv}\n")
    });
}
