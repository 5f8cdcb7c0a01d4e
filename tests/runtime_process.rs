//! The process around the proxy: control signals (SIGUSR1 soft stop, SIGTERM hard stop,
//! SIGTTOU/SIGTTIN pause and resume), `hard-stop-after`, going to the background with a
//! pidfile, `nbthread` and the `-d` banner. Every check runs against hapx and, when it is
//! installed, against HAProxy 2.6 with the same expectation, so that the expectation is
//! HAProxy's. Loopback only; every wait is bounded; every process is killed at the end.
mod common;

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One program under test.
struct Target {
    /// "hapx" (or what HAPX_TEST_PROXY names) or "haproxy".
    name: &'static str,
    program: String,
}

impl Target {
    fn is_hapx(&self) -> bool {
        self.program == HAPX
    }

    /// `-db -f cfg`, waiting for `ports`.
    fn start(&self, cfg: &str, ports: &[u16]) -> Proc {
        if self.name == "haproxy" {
            start_haproxy(cfg, ports)
        } else {
            start_hapx(cfg, ports)
        }
    }

    /// `program ARGS -f cfg` in a fresh dir, waiting for `ports`.
    fn start_with(&self, args: &[&str], cfg: &str, ports: &[u16]) -> Proc {
        let dir = temp_dir(self.name);
        let path = dir.join("test.cfg");
        std::fs::write(&path, cfg).expect("write cfg");
        let mut cmd = Command::new(&self.program);
        cmd.args(args).arg("-f").arg(&path);
        Proc::start(self.name, cmd, &dir, ports)
    }
}

/// hapx (or HAPX_TEST_PROXY), then HAProxy when installed.
fn targets() -> Vec<Target> {
    let under = std::env::var("HAPX_TEST_PROXY").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| HAPX.to_string());
    let mut v = vec![Target { name: "hapx", program: under }];
    need("haproxy");
    v.push(Target { name: "haproxy", program: "haproxy".to_string() });
    v
}

/// Runs `check` on every target and fails with every target's failure, so that a hapx
/// failure shows next to HAProxy's result on the same check.
fn on_every_target(check: impl Fn(&Target)) {
    let mut failures = Vec::new();
    for t in targets() {
        let r = catch_unwind(AssertUnwindSafe(|| check(&t)));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{} ({}): {msg}", t.name, t.program));
        }
    }
    assert!(failures.is_empty(), "failed on:\n{}", failures.join("\n"));
}

/// `global` with `extra`, a frontend on `port` and a backend to `server`.
fn config(extra: &str, port: u16, server: u16) -> String {
    format!(
        "global\n{extra}{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{server}\n"
    )
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Sends `msg` and expects it back within the socket's read timeout.
fn echoes(c: &mut TcpStream, msg: &[u8]) -> bool {
    c.write_all(msg).is_ok() && read_n(c, msg.len()).is_ok_and(|v| v == msg)
}

/// A session through the proxy that has echoed once.
fn session(port: u16) -> TcpStream {
    let mut c = connect(port, Duration::from_secs(5));
    assert!(echoes(&mut c, b"hello\n"), "the first session does not echo");
    c
}

/// Waits for the process to end; its status and how long it took, or None.
fn exits_within(p: &mut Proc, within: Duration) -> Option<(ExitStatus, Duration)> {
    let started = Instant::now();
    let mut status = None;
    wait_until(within, || {
        status = p.child.try_wait().ok().flatten();
        status.is_some()
    });
    status.map(|s| (s, started.elapsed()))
}

/// What a new connection attempt meets.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// The kernel refused it: nothing listens.
    Refused,
    /// Connected, but no byte came back within the wait.
    NotServed,
    /// Connected and echoed.
    Served,
}

fn attempt(port: u16, wait: Duration) -> Attempt {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Attempt::Refused,
        Err(e) => panic!("connect {addr}: unexpected {e}"),
        Ok(mut c) => {
            c.set_read_timeout(Some(wait)).expect("timeout");
            c.set_write_timeout(Some(wait)).expect("timeout");
            if echoes(&mut c, b"probe\n") {
                Attempt::Served
            } else {
                Attempt::NotServed
            }
        }
    }
}

#[test]
fn sigusr1_closes_the_listener_and_exits_when_the_last_session_ends() {
    let echo = Server::start(echo_handler);
    on_every_target(|t| {
        let port = free_port();
        let mut p = t.start(&config("", port, echo.port), &[port]);
        let mut c = session(port);
        signal(p.child.id(), "USR1");
        let unbound = wait_until(Duration::from_secs(3), || !is_listening(port));
        let next = attempt(port, Duration::from_millis(500));
        assert!(
            unbound && next == Attempt::Refused,
            "after SIGUSR1 the port still listens ({}), a new connection is {next:?}",
            !unbound
        );
        assert!(p.alive(), "exited with a session still open: {}", p.stderr());
        assert!(echoes(&mut c, b"still here\n"), "the established session no longer echoes after SIGUSR1");
        c.shutdown(Shutdown::Write).expect("shutdown");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        assert!(read_to_end(&mut c).closed(), "the session was not closed after its end");
        let (status, _) =
            exits_within(&mut p, Duration::from_secs(5)).expect("still running 5 s after the last session");
        assert_eq!(status.code(), Some(0), "exit status after a soft stop: {status}");
    });
}

#[test]
fn sigterm_exits_at_once_and_cuts_established_sessions() {
    let echo = Server::start(echo_handler);
    on_every_target(|t| {
        let port = free_port();
        let mut p = t.start(&config("", port, echo.port), &[port]);
        let mut c = session(port);
        signal(p.child.id(), "TERM");
        let (_, took) =
            exits_within(&mut p, Duration::from_secs(3)).expect("still running 3 s after SIGTERM with a session open");
        c.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        let end = read_to_end(&mut c);
        assert!(end.closed(), "the session stays open after SIGTERM ({end:?})");
        eprintln!("{}: SIGTERM exit after {took:?}, session {end:?}", t.name);
    });
}

/// HAProxy 2.6 (`-db`) dies of SIGTERM and SIGINT: its parent sees the signal, not an exit
/// code (a shell reports 143 and 130).
#[test]
fn sigterm_and_sigint_end_the_process_by_the_signal() {
    use std::os::unix::process::ExitStatusExt;
    let echo = Server::start(echo_handler);
    on_every_target(|t| {
        for (name, number) in [("TERM", libc::SIGTERM), ("INT", libc::SIGINT)] {
            let port = free_port();
            let mut p = t.start(&config("", port, echo.port), &[port]);
            signal(p.child.id(), name);
            let (status, _) = exits_within(&mut p, Duration::from_secs(3)).expect("still running 3 s after the signal");
            assert_eq!(status.signal(), Some(number), "SIG{name}: {status}");
        }
    });
}

#[test]
fn sigttou_pauses_the_listeners_and_sigttin_resumes_them() {
    let echo = Server::start(echo_handler);
    on_every_target(|t| {
        let port = free_port();
        let mut p = t.start(&config("", port, echo.port), &[port]);
        let mut c = session(port);
        signal(p.child.id(), "TTOU");
        // HAProxy disconnects the listening socket on pause: new connections are refused.
        let paused = wait_until(Duration::from_secs(3), || !is_listening(port));
        let during = attempt(port, Duration::from_millis(500));
        assert!(
            paused && during == Attempt::Refused,
            "while paused: still listening {}, a new connection is {during:?}",
            !paused
        );
        assert!(echoes(&mut c, b"paused\n"), "an established session stops echoing while paused");
        signal(p.child.id(), "TTIN");
        assert!(wait_until(Duration::from_secs(3), || is_listening(port)), "not listening again after SIGTTIN");
        let after = attempt(port, Duration::from_secs(3));
        assert_eq!(after, Attempt::Served, "after SIGTTIN");
        assert!(echoes(&mut c, b"resumed\n"), "the established session stops echoing after resume");
        assert!(p.alive(), "exited: {}", p.stderr());
    });
}

#[test]
fn hard_stop_after_bounds_a_soft_stop() {
    let echo = Server::start(echo_handler);
    on_every_target(|t| {
        let port = free_port();
        let mut p = t.start(&config("    hard-stop-after 1s\n", port, echo.port), &[port]);
        let mut c = session(port);
        signal(p.child.id(), "USR1");
        let (status, took) = exits_within(&mut p, Duration::from_secs(4))
            .expect("still running 4 s after SIGUSR1 with hard-stop-after 1s");
        assert!(took >= Duration::from_millis(700), "exited after {took:?}, before hard-stop-after 1s");
        assert!(took <= Duration::from_millis(2500), "exited after {took:?}, long after hard-stop-after 1s");
        c.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        assert!(read_to_end(&mut c).closed(), "the session stays open after the hard stop");
        eprintln!("{}: hard-stop-after exit {status} after {took:?}", t.name);
    });
}

/// Kills a background process (by the pid its pidfile gave) when dropped.
struct Daemon(u32);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-KILL").arg(self.0.to_string()).stderr(Stdio::null()).status();
    }
}

/// Runs `program ARGS -f cfg` expecting it to go to the background: the command must return
/// 0 at once and `pidfile` must name a live process that serves `port`.
fn check_daemon(t: &Target, args: &[&str], cfg: &str, pidfile: &Path, port: u16, dir: &Path) {
    let path = dir.join("test.cfg");
    std::fs::write(&path, cfg).expect("write cfg");
    let mut cmd = Command::new(&t.program);
    cmd.args(args).arg("-f").arg(&path);
    let stderr_path = dir.join("fg.stderr");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("fg.stdout")).expect("stdout"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr"))
        .spawn()
        .expect("spawn");
    let mut fg = Proc { name: "foreground".into(), child, stderr_path };
    let fg_pid = fg.child.id();
    let ended = exits_within(&mut fg, Duration::from_secs(5));
    // Read the pidfile (if any) before any assertion so that the daemon is always killed.
    let mut pid = None;
    wait_until(Duration::from_secs(5), || {
        pid = std::fs::read_to_string(pidfile).ok().and_then(|s| s.trim().parse::<u32>().ok());
        pid.is_some()
    });
    let _guard = pid.map(Daemon);
    let (status, took) =
        ended.unwrap_or_else(|| panic!("the foreground command did not return within 5 s: {}", fg.stderr()));
    assert!(status.success(), "the foreground command exited with {status}: {}", fg.stderr());
    assert!(took < Duration::from_secs(3), "the foreground command took {took:?}");
    let pid = pid.unwrap_or_else(|| panic!("no pid in {}", pidfile.display()));
    assert_ne!(pid, fg_pid, "the pidfile names the foreground process");
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} from the pidfile is not running");
    assert!(wait_until(Duration::from_secs(5), || is_listening(port)), "the daemon does not listen");
    let mut c = connect(port, Duration::from_secs(5));
    assert!(echoes(&mut c, b"daemon\n"), "the daemon does not serve");
}

#[test]
fn dash_capital_d_with_dash_p_goes_to_the_background() {
    let echo = Server::start(echo_handler);
    on_every_target(|t| {
        let port = free_port();
        let dir = temp_dir("daemon-cli");
        let pidfile = dir.join("run.pid");
        let pf = pidfile.to_string_lossy().into_owned();
        check_daemon(t, &["-D", "-p", &pf], &config("", port, echo.port), &pidfile, port, &dir);
    });
}

#[test]
fn global_daemon_with_pidfile_goes_to_the_background() {
    let echo = Server::start(echo_handler);
    on_every_target(|t| {
        let port = free_port();
        let dir = temp_dir("daemon-global");
        let pidfile: PathBuf = dir.join("run.pid");
        let extra = format!("    daemon\n    pidfile {}\n", pidfile.display());
        check_daemon(t, &[], &config(&extra, port, echo.port), &pidfile, port, &dir);
    });
}

/// The names of the process's threads.
fn thread_names(pid: u32) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            if let Ok(n) = std::fs::read_to_string(e.path().join("comm")) {
                names.push(n.trim().to_string());
            }
        }
    }
    names.sort();
    names
}

#[test]
fn nbthread_2_runs_two_event_loops_and_serves_200_concurrent_connections() {
    let echo = Server::start(echo_handler);
    on_every_target(|t| {
        let port = free_port();
        let p = t.start(&config("    nbthread 2\n", port, echo.port), &[port]);
        let names = thread_names(p.child.id());
        if t.is_hapx() {
            let loops: Vec<&String> = names.iter().filter(|n| n.starts_with("hapx-")).collect();
            assert_eq!(loops, ["hapx-0", "hapx-1"], "event-loop threads (all threads: {names:?})");
        } else {
            // HAProxy does not name its threads: nbthread 2 is two threads in all.
            assert_eq!(names.len(), 2, "threads: {names:?}");
        }
        let mut conns: Vec<TcpStream> = (0..200).map(|_| connect(port, Duration::from_secs(10))).collect();
        for (i, c) in conns.iter_mut().enumerate() {
            c.write_all(format!("connection {i:03}\n").as_bytes()).expect("write");
        }
        for (i, c) in conns.iter_mut().enumerate() {
            let want = format!("connection {i:03}\n");
            let got = read_n(c, want.len()).map(|v| String::from_utf8_lossy(&v).into_owned());
            assert_eq!(got.ok().as_deref(), Some(want.as_str()), "connection {i}");
        }
        for c in &conns {
            c.shutdown(Shutdown::Write).expect("shutdown");
        }
        for (i, c) in conns.iter_mut().enumerate() {
            assert!(matches!(read_to_end(c), End::Eof(ref d) if d.is_empty()), "connection {i} did not end cleanly");
        }
        // Every connection was served by the one server behind the proxy.
        assert!(echo.accepted() >= 200);
        drop(p);
    });
}

/// HAProxy prints the polling mechanism line on stdout; the list of polling systems before
/// it goes to stderr.
#[test]
fn dash_d_names_the_polling_mechanism_on_stdout() {
    let echo = Server::start(echo_handler);
    on_every_target(|t| {
        let port = free_port();
        let p = t.start_with(&["-d"], &config("", port, echo.port), &[port]);
        let c = session(port);
        drop(c.shutdown(Shutdown::Both));
        let stdout_path = p.stderr_path.with_extension("stdout");
        let line = "Using epoll() as the polling mechanism.";
        let mut out = String::new();
        let found = wait_until(Duration::from_secs(3), || {
            out = std::fs::read_to_string(&stdout_path).unwrap_or_default();
            out.lines().any(|l| l == line)
        });
        assert!(found, "no '{line}' line on stdout:\n{out}\nstderr:\n{}", p.stderr());
        assert!(p.stderr().contains("Available polling systems :"), "no list of polling systems on stderr");
    });
}
