//! The backend queue: clients beyond the servers' `maxconn` wait, are served when a slot frees
//! or are closed at `timeout queue`, and waiting costs no CPU.
//!
//! `listen q` has two servers with `maxconn 1` and a backup (unused while an active server is
//! up, full or not); `listen other` is a plain second proxy. Five clients are held open on `q`,
//! so two are served and three queue. HAProxy 2.6 and hapx run side by side with the same
//! configuration (only the bind ports differ) over the same echo servers, and every check is
//! made on both: what the clients see (echo or not, closed or not), that `other` keeps
//! answering, that the backup gets no connection, and that the proxy uses under 1 % of a core
//! while clients wait in the queue and after the queue drained (CPU ticks from /proc/PID/stat
//! over a few seconds divided by the wall time: a load measurement, not a duration).
//! `HAPX_TEST_PROXY=haproxy` puts HAProxy on the hapx side too.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

/// The most CPU a proxy may use while nothing moves, in percent of one core.
const IDLE_CPU: f64 = 1.0;
/// Window of each CPU measurement.
const WINDOW: Duration = Duration::from_secs(3);

struct Backends {
    a1: Server,
    a2: Server,
    b1: Server,
    o: Server,
}

fn backends() -> Backends {
    Backends {
        a1: Server::start(echo_handler),
        a2: Server::start(echo_handler),
        b1: Server::start(echo_handler),
        o: Server::start(echo_handler),
    }
}

fn cfg(q: u16, other: u16, b: &Backends, queue: &str) -> String {
    format!(
        "global\n    nbthread 1\n{DEFAULTS}listen q\n    bind 127.0.0.1:{q}\n    timeout queue {queue}\n    server a1 127.0.0.1:{} maxconn 1\n    server a2 127.0.0.1:{} maxconn 1\n    server b1 127.0.0.1:{} backup\nlisten other\n    bind 127.0.0.1:{other}\n    server o 127.0.0.1:{}\n",
        b.a1.port, b.a2.port, b.b1.port, b.o.port
    )
}

/// One proxy under test: its process, its two ports, its five clients of `q`.
struct Side {
    name: &'static str,
    proc: Proc,
    q: u16,
    other: u16,
    clients: Vec<Option<TcpStream>>,
}

impl Side {
    fn start(haproxy: bool, b: &Backends, queue: &str) -> Side {
        let (q, other) = (free_port(), free_port());
        let text = cfg(q, other, b, queue);
        let (name, proc) = if haproxy {
            ("haproxy", start_haproxy(&text, &[q, other]))
        } else {
            ("hapx", start_hapx(&text, &[q, other]))
        };
        Side { name, proc, q, other, clients: Vec::new() }
    }

    fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    fn client(&mut self, i: usize) -> &mut TcpStream {
        self.clients[i].as_mut().expect("client still open")
    }

    fn close(&mut self, i: usize) {
        if let Some(s) = self.clients[i].take() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Runs `scenario` on HAProxy and on hapx at the same time (one thread each, so that one
/// side's slow failures cannot push the other past its `timeout queue`), then checks the
/// backup server was never used; panics with every problem found on either side.
fn on_both(queue: &str, scenario: fn(&mut Side) -> Vec<String>) {
    assert!(have("haproxy"), "haproxy is not installed (apt-get install haproxy)");
    let b = backends();
    let sides = [Side::start(true, &b, queue), Side::start(false, &b, queue)];
    let threads: Vec<_> = sides
        .into_iter()
        .map(|mut side| {
            thread::spawn(move || {
                let problems = scenario(&mut side);
                drop(side);
                problems
            })
        })
        .collect();
    let mut problems: Vec<String> = threads.into_iter().flat_map(|t| t.join().expect("scenario thread")).collect();
    if b.b1.accepted() != 0 {
        problems.push(format!("the backup server got {} connections while actives were up", b.b1.accepted()));
    }
    for p in &problems {
        eprintln!("problem: {p}");
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// Opens the five clients of `q` one after the other, each sending its name "c<i>\n".
fn open_five(side: &mut Side) {
    for i in 0..5 {
        let mut s = connect(side.q, Duration::from_secs(5));
        s.write_all(format!("c{i}\n").as_bytes()).expect("client write");
        side.clients.push(Some(s));
        // Let the proxy take each client in order: c0 and c1 get the servers, c2..c4 queue.
        thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `s` gets exactly `want` back within `timeout`.
fn echoed(s: &mut TcpStream, want: &[u8], timeout: Duration) -> Result<(), String> {
    s.set_read_timeout(Some(timeout)).expect("read timeout");
    read_n(s, want.len()).map_err(|e| format!("no echo of {:?}: {e}", String::from_utf8_lossy(want))).and_then(|got| {
        if got == want {
            Ok(())
        } else {
            Err(format!("echo {:?} instead of {want:?}", String::from_utf8_lossy(&got)))
        }
    })
}

/// Whether `s` stays open and silent for `quiet`.
fn waiting(s: &mut TcpStream, quiet: Duration) -> Result<(), String> {
    s.set_read_timeout(Some(quiet)).expect("read timeout");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(()),
        Ok(0) => Err("closed while it should wait in the queue".into()),
        Ok(n) => Err(format!("got {:?} while it should wait in the queue", String::from_utf8_lossy(&buf[..n]))),
        Err(e) => Err(format!("error while it should wait in the queue: {e}")),
    }
}

/// A request through `listen other` gets its echo.
fn other_answers(port: u16) -> Result<(), String> {
    let mut s = connect(port, Duration::from_secs(3));
    s.write_all(b"other\n").map_err(|e| format!("other: write: {e}"))?;
    echoed(&mut s, b"other\n", Duration::from_secs(3)).map_err(|e| format!("listen other: {e}"))
}

/// The proxy's CPU share over `WINDOW`; a problem when at or above `IDLE_CPU`.
fn idle_cpu(side: &Side, when: &str, problems: &mut Vec<String>) {
    let pct = cpu_percent(&[side.pid()], WINDOW)[0];
    eprintln!("{:8} CPU {when}: {pct:.2} % of a core", side.name);
    if pct >= IDLE_CPU {
        problems.push(format!("{}: {pct:.1} % of a core {when} (limit {IDLE_CPU} %)", side.name));
    }
}

fn check(problems: &mut Vec<String>, who: &str, what: &str, r: Result<(), String>) {
    if let Err(e) = r {
        problems.push(format!("{who}: {what}: {e}"));
    }
}

/// `timeout queue 20s` (longer than the scenario): queued clients wait silently, each client
/// that leaves lets the next queued one in, first come first served.
fn served_as_slots_free(side: &mut Side) -> Vec<String> {
    let mut problems = Vec::new();
    let name = side.name;
    open_five(side);
    for i in 0..2 {
        let r = echoed(side.client(i), format!("c{i}\n").as_bytes(), Duration::from_secs(3));
        check(&mut problems, name, &format!("served client c{i}"), r);
    }
    for i in 2..5 {
        let r = waiting(side.client(i), Duration::from_millis(300));
        check(&mut problems, name, &format!("queued client c{i}"), r);
    }
    check(&mut problems, name, "while clients queue", other_answers(side.other));
    idle_cpu(side, "while three clients wait in the queue", &mut problems);
    for (leaving, next) in [(0, 2), (1, 3), (2, 4)] {
        side.close(leaving);
        let r = echoed(side.client(next), format!("c{next}\n").as_bytes(), Duration::from_secs(3));
        check(&mut problems, name, &format!("queued client c{next} once c{leaving} left"), r);
    }
    for i in 3..5 {
        side.close(i);
    }
    thread::sleep(Duration::from_millis(200));
    idle_cpu(side, "after the queue drained", &mut problems);
    check(&mut problems, name, "after the queue drained", other_answers(side.other));
    problems
}

/// `timeout queue 1s`: the queued clients are closed without a byte, the served ones go on.
fn closed_at_timeout_queue(side: &mut Side) -> Vec<String> {
    let mut problems = Vec::new();
    let name = side.name;
    open_five(side);
    for i in 0..2 {
        let r = echoed(side.client(i), format!("c{i}\n").as_bytes(), Duration::from_secs(3));
        check(&mut problems, name, &format!("served client c{i}"), r);
    }
    check(&mut problems, name, "while clients queue", other_answers(side.other));
    for i in 2..5 {
        let r = match read_to_end_within(side.client(i), Duration::from_secs(4)) {
            End::Eof(d) | End::Reset(d) if d.is_empty() => Ok(()),
            other => Err(format!("{other:?} (expected a close without data)")),
        };
        check(&mut problems, name, &format!("queued client c{i} at timeout queue"), r);
    }
    for i in 0..2 {
        let s = side.client(i);
        let r = s.write_all(b"again\n").map_err(|e| format!("write: {e}"));
        let r = r.and_then(|()| echoed(s, b"again\n", Duration::from_secs(3)));
        check(&mut problems, name, &format!("served client c{i} after the queue timed out"), r);
    }
    idle_cpu(side, "after the queue timed out (two clients idle)", &mut problems);
    check(&mut problems, name, "after the queue timed out", other_answers(side.other));
    for i in 0..5 {
        side.close(i);
    }
    problems
}

#[test]
fn queued_clients_are_served_as_slots_free_and_waiting_costs_no_cpu() {
    on_both("20s", served_as_slots_free);
}

#[test]
fn queued_clients_are_closed_at_timeout_queue_and_the_proxy_stays_idle() {
    on_both("1s", closed_at_timeout_queue);
}

fn read_to_end_within(s: &mut TcpStream, timeout: Duration) -> End {
    s.set_read_timeout(Some(timeout)).expect("read timeout");
    read_to_end(s)
}
