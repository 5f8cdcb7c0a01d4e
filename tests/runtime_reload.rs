//! Reloads that drop nothing: clients loop connect / send / read the echo / close through the
//! proxy while it is reloaded 20 times with `-sf OLDPID` (each new process started once the
//! previous one is up, each old one waited for until it exits). Every failed attempt (refused,
//! reset, short or wrong echo, timeout) is counted. The same scenario runs on HAProxy 2.6 and
//! on hapx; both counts are printed, and hapx must fail none. Loopback only; every wait is
//! bounded by one deadline per program; every process is killed at the end.
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const RELOADS: usize = 20;
const CLIENTS: usize = 4;
/// Traffic before the first reload, between two reloads and after the last one.
const BETWEEN: Duration = Duration::from_millis(400);
/// The whole scenario for one program (the test runs two).
const BUDGET: Duration = Duration::from_secs(27);
/// How long one client attempt may wait for its connect and for its echo. A connection
/// request that the kernel dropped is sent again after a second: that is slow, not failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// What the clients saw.
#[derive(Default)]
struct Tally {
    attempts: AtomicU64,
    failed: AtomicU64,
    /// Served, but after more than 900 ms (a connection request sent again).
    slow: AtomicU64,
    /// The first few failures, for the report.
    samples: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut s) = self.samples.lock() {
            if s.len() < 8 {
                s.push(what);
            }
        }
    }
}

/// One attempt: connect, send a line, read it back, close. Err says what went wrong.
fn attempt(addr: &SocketAddr, n: u64) -> Result<(), String> {
    let mut c = TcpStream::connect_timeout(addr, ATTEMPT_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(ATTEMPT_TIMEOUT)).map_err(|e| e.to_string())?;
    c.set_write_timeout(Some(ATTEMPT_TIMEOUT)).map_err(|e| e.to_string())?;
    let _ = c.set_nodelay(true);
    let msg = format!("attempt {n:016}\n");
    c.write_all(msg.as_bytes()).map_err(|e| format!("send: {e}"))?;
    let mut got = vec![0u8; msg.len()];
    let mut have = 0;
    while have < got.len() {
        match c.read(&mut got[have..]) {
            Ok(0) => return Err(format!("short echo: {have} of {} bytes, then the end", msg.len())),
            Ok(k) => have += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("echo after {have} bytes: {e}")),
        }
    }
    if got != msg.as_bytes() {
        return Err("wrong echo".to_string());
    }
    Ok(())
}

fn client_loop(port: u16, id: u64, stop: &AtomicBool, tally: &Tally) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut n = id << 48;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        tally.attempts.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        match attempt(&addr, n) {
            Ok(()) if started.elapsed() > Duration::from_millis(900) => {
                tally.slow.fetch_add(1, Ordering::AcqRel);
            }
            Ok(()) => {}
            Err(e) => tally.fail(e),
        }
    }
}

/// The outcome of the scenario for one program.
struct Outcome {
    attempts: u64,
    failed: u64,
    slow: u64,
    samples: Vec<String>,
    took: Duration,
}

/// `program -db -f cfg [-sf PID]` as a process killed on drop; it is not waited for.
fn spawn(program: &str, name: &str, cfg: &std::path::Path, old: Option<u32>) -> Proc {
    // Each process writes its own stdout/stderr files.
    let name = format!("{name}-{}", old.map_or(0, |p| p));
    let dir = cfg.parent().map(|d| d.to_path_buf()).unwrap_or_default();
    let mut cmd = Command::new(program);
    cmd.arg("-db").arg("-f").arg(cfg);
    if let Some(pid) = old {
        cmd.arg("-sf").arg(pid.to_string());
    }
    Proc::start(&name, cmd, &dir, &[])
}

/// Whether `pid` holds a socket listening on 127.0.0.1:port (its fds against /proc/net/tcp).
fn listens(pid: u32, port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[1] == want && f[3] == "0A").then(|| format!("socket:[{}]", f[9]))
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|rd| {
        rd.flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| inodes.iter().any(|i| t.as_os_str() == i.as_str())))
    })
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The scenario: a proxy in front of an echo server, CLIENTS client loops, RELOADS reloads.
fn reload_under_load(program: &str, name: &str) -> Outcome {
    let started = Instant::now();
    let deadline = started + BUDGET;
    let echo = Server::start(echo_handler);
    let port = free_port();
    let dir = temp_dir(&format!("reload-{name}"));
    let cfg = dir.join("test.cfg");
    let text = format!(
        "global\n{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        echo.port
    );
    std::fs::write(&cfg, text).expect("write cfg");
    let mut current = spawn(program, name, &cfg, None);
    // Connecting is cheaper than reading /proc/net/tcp, which grows with every TIME_WAIT.
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(remaining(deadline), || TcpStream::connect(addr).is_ok() || !current.alive()),
        "{name} did not listen on {port}: {}",
        current.stderr()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..CLIENTS as u64)
        .map(|id| {
            let (stop, tally) = (stop.clone(), tally.clone());
            thread::spawn(move || client_loop(port, id, &stop, &tally))
        })
        .collect();
    // Every step below is bounded by the deadline; a failure stops the clients first.
    let mut problem = None;
    for i in 0..RELOADS {
        thread::sleep(BETWEEN);
        let old_pid = current.child.id();
        // Reloads happen on busy hosts: a spinning thread competes with the processes while
        // the old one stops, which widens the moment where a closing listener loses what the
        // kernel queued on it.
        let busy = Arc::new(AtomicBool::new(true));
        let spinner = {
            let busy = busy.clone();
            thread::spawn(move || {
                while busy.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        let mut next = spawn(program, name, &cfg, Some(old_pid));
        // The new process signals the old one once it has bound its listeners.
        let gone = wait_until(remaining(deadline), || !current.alive() || !next.alive());
        busy.store(false, Ordering::Relaxed);
        let _ = spinner.join();
        if !next.alive() {
            problem = Some(format!("reload {i}: the new process exited: {}", next.stderr()));
            break;
        }
        if !gone {
            problem = Some(format!("reload {i}: the old process {old_pid} has not exited"));
            break;
        }
        current = next;
    }
    thread::sleep(BETWEEN);
    stop.store(true, Ordering::Release);
    for c in clients {
        let _ = c.join();
    }
    let took = started.elapsed();
    if let Some(p) = problem {
        panic!("{name}: {p}");
    }
    assert!(
        current.alive() && listens(current.child.id(), port),
        "{name}: the last process does not listen: {}",
        current.stderr()
    );
    let samples = tally.samples.lock().map(|s| s.clone()).unwrap_or_default();
    Outcome {
        attempts: tally.attempts.load(Ordering::Acquire),
        failed: tally.failed.load(Ordering::Acquire),
        slow: tally.slow.load(Ordering::Acquire),
        samples,
        took,
    }
}

#[test]
fn twenty_soft_reloads_under_a_connection_loop_fail_no_client() {
    assert!(have("haproxy"), "haproxy is not installed: this test compares hapx with HAProxy 2.6");
    let haproxy = reload_under_load("haproxy", "haproxy");
    // HAPX_TEST_PROXY names another build to measure (as in the other runtime tests).
    let under = std::env::var("HAPX_TEST_PROXY").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| HAPX.to_string());
    let hapx = reload_under_load(&under, "hapx");
    for (name, o) in [("haproxy", &haproxy), ("hapx", &hapx)] {
        eprintln!(
            "{name}: {RELOADS} reloads with -sf in {:.1?}: {} attempts, {} failed, {} served after more than 900 ms{}",
            o.took,
            o.attempts,
            o.failed,
            o.slow,
            if o.samples.is_empty() { String::new() } else { format!(" (first failures: {:?})", o.samples) }
        );
    }
    assert!(hapx.attempts > 1000, "too few attempts through hapx to say anything: {}", hapx.attempts);
    assert_eq!(hapx.failed, 0, "client attempts failed across hapx reloads: {:?}", hapx.samples);
}
