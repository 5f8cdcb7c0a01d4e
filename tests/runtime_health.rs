//! Health checks through hapx with real MQTT brokers: a killed broker is marked DOWN within
//! `fall` checks and gets no new client, a restarted one is marked UP after `rise` checks and
//! gets clients again under leastconn, and `on-marked-down shutdown-sessions` cuts the
//! sessions of the broker that went down while the others keep theirs.
//!
//! Brokers are mosquitto processes (required: CI installs it) and embedded
//! rumqttd brokers. rumqttd cannot be stopped in-process, so each sits behind a small TCP
//! forwarder of this file that can be shut (listener closed, sessions cut) and reopened on the
//! same port. Which broker got which client is read from the brokers' own records: mosquitto's
//! "New client connected ... as <id>" log lines, or the client id of the CONNECT packets the
//! forwarder carried. hapx's stderr is read by a thread that timestamps each line.
//!
//! Every wait is bounded; every process is killed on drop. Run with
//! `HAPX_TEST_PROXY=haproxy` to check the expectations against HAProxy itself.
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;

const INTER: Duration = Duration::from_millis(300);
const FALL: u32 = 2;
const RISE: u32 = 2;
/// Allowance for a loaded machine: the bounds below are the ideal ones times this.
const SLACK: u32 = 3;
/// Timers may fire a little early or the poll that saw a port listening a little late.
const JITTER: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------------
// hapx with its stderr read line by line by a thread.

type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

struct Watched {
    child: Child,
    lines: Lines,
    reader: Option<JoinHandle<()>>,
}

impl Watched {
    /// Runs `hapx -db -f cfg` (or `$HAPX_TEST_PROXY`) and waits until `port` listens.
    fn start(cfg: &str, port: u16) -> Watched {
        let program = match std::env::var("HAPX_TEST_PROXY") {
            Ok(p) if !p.is_empty() => p,
            _ => HAPX.to_string(),
        };
        let dir = temp_dir("health");
        let path = dir.join("test.cfg");
        std::fs::write(&path, cfg).expect("write cfg");
        let mut child = Command::new(&program)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let lines: Lines = Arc::default();
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = lines.clone();
        // Ends at EOF, that is when the process is killed.
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut v) = sink.lock() {
                    v.push((Instant::now(), line));
                }
            }
        });
        let mut w = Watched { child, lines, reader: Some(reader) };
        let up = wait_until(Duration::from_secs(10), || is_listening(port) || !w.alive());
        assert!(up && w.alive(), "{program} did not listen on {port}: {}", w.text());
        w
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn text(&self) -> String {
        self.lines.lock().map(|v| v.iter().map(|(_, l)| format!("{l}\n")).collect()).unwrap_or_default()
    }

    /// Lines containing `pat`, with the instant each was read.
    fn matching(&self, pat: &str) -> Vec<(Instant, String)> {
        self.lines.lock().map(|v| v.iter().filter(|(_, l)| l.contains(pat)).cloned().collect()).unwrap_or_default()
    }

    /// The first line containing `pat` read at or after `since`, waiting at most `timeout`.
    fn wait_line(&self, pat: &str, since: Instant, timeout: Duration) -> Option<(Instant, String)> {
        let mut found = None;
        wait_until(timeout, || {
            found = self.matching(pat).into_iter().find(|(t, _)| *t >= since);
            found.is_some()
        });
        found
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Brokers.

trait Broker {
    /// The port hapx sends clients to.
    fn port(&self) -> u16;
    /// Client ids of every MQTT CONNECT this broker received, over all its lives.
    fn clients(&self) -> Vec<String>;
    /// Dies with its sessions.
    fn kill(&mut self);
    /// Comes back on the same port; returns once it listens.
    fn restart(&mut self);
}

/// A mosquitto process; killing it is SIGKILL, restarting runs it again with the same config.
struct Mosquitto {
    idx: usize,
    port: u16,
    dir: PathBuf,
    conf: PathBuf,
    proc: Option<Proc>,
    logs: Vec<PathBuf>,
}

impl Mosquitto {
    fn start(idx: usize) -> Mosquitto {
        let port = free_port();
        let dir = temp_dir(&format!("health-mosquitto{idx}"));
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_keepalive 600\n"))
            .expect("conf");
        let mut m = Mosquitto { idx, port, dir, conf, proc: None, logs: Vec::new() };
        m.restart();
        m
    }

    fn pid(&self) -> u32 {
        self.proc.as_ref().map(|p| p.child.id()).expect("mosquitto running")
    }

    /// Stops the process without closing anything: it keeps its sessions and its listener
    /// (the kernel still completes handshakes) but answers nothing.
    fn hang(&self) {
        let ok = Command::new("kill").arg("-STOP").arg(self.pid().to_string()).status().is_ok_and(|s| s.success());
        assert!(ok, "kill -STOP mosquitto");
    }
}

impl Broker for Mosquitto {
    fn port(&self) -> u16 {
        self.port
    }

    fn clients(&self) -> Vec<String> {
        // "1700000000: New client connected from 127.0.0.1:41234 as up-3 (p2, c1, k60)."
        let mut ids = Vec::new();
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            for line in text.lines().filter(|l| l.contains("New client connected from")) {
                if let Some(rest) = line.split(" as ").nth(1) {
                    ids.push(rest.split(" (").next().unwrap_or(rest).to_string());
                }
            }
        }
        ids
    }

    fn kill(&mut self) {
        self.proc = None;
    }

    fn restart(&mut self) {
        let name = format!("mosquitto{}-{}", self.idx, self.logs.len());
        self.logs.push(self.dir.join(format!("{name}.stderr")));
        let mut cmd = Command::new("mosquitto");
        cmd.arg("-c").arg(&self.conf);
        self.proc = Some(Proc::start(&name, cmd, &self.dir, &[self.port]));
    }
}

fn mosquittos(n: usize) -> Option<Vec<Mosquitto>> {
    need("mosquitto");
    Some((0..n).map(Mosquitto::start).collect())
}

#[derive(Default)]
struct FwdShared {
    /// Both sockets of each open session, to cut them.
    sessions: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    /// Client ids read from the CONNECT packets carried.
    clients: Mutex<Vec<String>>,
    next: AtomicU64,
}

/// A TCP forwarder from its own loopback port to a broker: closing its listener makes the
/// broker unreachable (connections refused) and cutting its sessions is the broker dying.
struct Forwarder {
    port: u16,
    upstream: u16,
    shared: Arc<FwdShared>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Forwarder {
    fn start(upstream: u16) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind forwarder");
        let port = listener.local_addr().expect("addr").port();
        let mut f = Forwarder {
            port,
            upstream,
            shared: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            acceptor: None,
        };
        f.listen(listener);
        f
    }

    fn listen(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        let (shared, upstream) = (self.shared.clone(), self.upstream);
        self.acceptor = Some(thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((c, _)) => {
                        let shared = shared.clone();
                        thread::spawn(move || forward(c, upstream, shared));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            // The listener is dropped (closed) here.
        }));
    }

    /// Closes the listener; sessions in progress go on.
    fn close_listener(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }

    fn cut_sessions(&self) {
        if let Ok(s) = self.shared.sessions.lock() {
            for (c, u) in s.values() {
                let _ = c.shutdown(Shutdown::Both);
                let _ = u.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Broker for Forwarder {
    fn port(&self) -> u16 {
        self.port
    }

    fn clients(&self) -> Vec<String> {
        self.shared.clients.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn kill(&mut self) {
        self.close_listener();
        assert!(!is_listening(self.port), "forwarder {} still listens", self.port);
        self.cut_sessions();
    }

    fn restart(&mut self) {
        // std sets SO_REUSEADDR, so the port is free again once its listener is closed.
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("rebind forwarder port");
        self.listen(listener);
        assert!(wait_until(Duration::from_secs(5), || is_listening(self.port)));
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.close_listener();
        self.cut_sessions();
    }
}

/// Carries one session both ways; either end closing ends both.
fn forward(mut c: TcpStream, upstream: u16, shared: Arc<FwdShared>) {
    let _ = c.set_nonblocking(false);
    let Ok(mut u) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
    let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = (c.try_clone(), u.try_clone(), c.try_clone(), u.try_clone()) else {
        return;
    };
    let id = shared.next.fetch_add(1, Ordering::AcqRel);
    if let Ok(mut s) = shared.sessions.lock() {
        s.insert(id, (c3, u3));
    }
    let back = thread::spawn(move || {
        let (mut u2, mut c2) = (u2, c2);
        copy(&mut u2, &mut c2, |_| {});
        let _ = u2.shutdown(Shutdown::Both);
        let _ = c2.shutdown(Shutdown::Both);
    });
    // The client id of the CONNECT, once its first bytes are in.
    let mut head = Vec::new();
    let mut named = false;
    let sh = shared.clone();
    copy(&mut c, &mut u, |data| {
        if named {
            return;
        }
        head.extend_from_slice(data);
        if let Some(cid) = connect_client_id(&head) {
            named = true;
            if let Ok(mut v) = sh.clients.lock() {
                v.push(cid);
            }
        }
    });
    let _ = c.shutdown(Shutdown::Both);
    let _ = u.shutdown(Shutdown::Both);
    let _ = back.join();
    if let Ok(mut s) = shared.sessions.lock() {
        s.remove(&id);
    }
}

fn copy(from: &mut TcpStream, to: &mut TcpStream, mut seen: impl FnMut(&[u8])) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                seen(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// The client id of an MQTT 3.1.1 CONNECT with a one-byte remaining length (as sent here).
fn connect_client_id(p: &[u8]) -> Option<String> {
    if p.first() != Some(&0x10) {
        return None;
    }
    let len = u16::from_be_bytes([*p.get(12)?, *p.get(13)?]) as usize;
    let id = p.get(14..14 + len)?;
    Some(String::from_utf8_lossy(id).into_owned())
}

/// Three rumqttd brokers, each behind a forwarder.
fn forwarded_rumqttds(n: usize) -> Vec<Forwarder> {
    (0..n)
        .map(|_| {
            let b = free_port();
            rumqttd(b);
            Forwarder::start(b)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// MQTT clients and hapx configs.

/// CONNECT (MQTT 3.1.1, clean session, keep-alive 60 s, client id `id`), then CONNACK.
fn mqtt_connect(port: u16, id: &str) -> TcpStream {
    let mut s = connect(port, Duration::from_secs(5));
    let mut pkt = vec![0x10, (12 + id.len()) as u8, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    pkt.extend_from_slice(&(id.len() as u16).to_be_bytes());
    pkt.extend_from_slice(id.as_bytes());
    s.write_all(&pkt).unwrap_or_else(|e| panic!("CONNECT of {id}: {e}"));
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap_or_else(|e| panic!("no CONNACK for {id}: {e}"));
    assert_eq!(ack, [0x20, 2, 0, 0], "CONNACK for {id}");
    s
}

/// PINGREQ, then PINGRESP.
fn ping(s: &mut TcpStream) -> std::io::Result<()> {
    s.write_all(&[0xc0, 0])?;
    let mut r = [0u8; 2];
    s.read_exact(&mut r)?;
    if r == [0xd0, 0] {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("not a PINGRESP: {r:02x?}")))
    }
}

/// `check_opts(i)`: more options of server broker_i.
fn hapx_cfg(port: u16, brokers: &[u16], check_opts: &dyn Fn(usize) -> String, extra: &str) -> String {
    let servers: String = brokers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "    server broker_{i} 127.0.0.1:{p} check inter {}ms fall {FALL} rise {RISE}{}\n",
                INTER.as_millis(),
                check_opts(i)
            )
        })
        .collect();
    format!(
        "global\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout connect 2s\n    timeout client 120s\n    \
         timeout server 120s\nlisten mqtt\n    bind 127.0.0.1:{port}\n    balance leastconn\n{extra}{servers}"
    )
}

/// Waits until every id of `ids` is in the broker's records (mosquitto's log is a file).
fn wait_clients(b: &dyn Broker, ids: &[String]) -> bool {
    wait_until(Duration::from_secs(5), || {
        let have = b.clients();
        ids.iter().all(|i| have.contains(i))
    })
}

fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ---------------------------------------------------------------------------------------------
// 1 and 2: a killed broker goes DOWN and gets nobody; restarted, it goes UP and gets clients.

fn down_then_up(kind: &str, brokers: &mut [Box<dyn Broker>]) {
    let ports: Vec<u16> = brokers.iter().map(|b| b.port()).collect();
    let port = free_port();
    let mut hapx = Watched::start(&hapx_cfg(port, &ports, &|_| String::new(), ""), port);
    // Servers start with `rise` health: one passed check makes them need `fall` failures.
    thread::sleep(INTER * 3);
    assert!(hapx.matching(" is DOWN").is_empty(), "{kind}: a live broker went down: {}", hapx.text());

    // 1. Kill broker_2: DOWN after `fall` refused checks, within inter × fall + one inter.
    let killed_at = Instant::now();
    brokers[2].kill();
    let (down_at, down) = hapx
        .wait_line("Server mqtt/broker_2 is DOWN", killed_at, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{kind}: broker_2 never marked DOWN: {}", hapx.text()));
    let took = down_at - killed_at;
    let bound = INTER * (FALL + 1);
    eprintln!("{kind}: killed broker_2 marked DOWN after {} ms (ideal bound {} ms)", ms(took), ms(bound));
    assert!(took <= bound * SLACK, "{kind}: DOWN {} ms after the kill, bound {} ms × {SLACK}", ms(took), ms(bound));
    assert!(
        took + JITTER >= INTER * (FALL - 1),
        "{kind}: DOWN {} ms after the kill: sooner than {FALL} checks allow",
        ms(took)
    );
    assert!(
        down.contains("Server mqtt/broker_2 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\"")
            && down.contains("2 active and 0 backup servers left."),
        "{kind}: DOWN line: {down}"
    );
    assert_eq!(hapx.matching(" is DOWN").len(), 1, "{kind}: {}", hapx.text());

    // No new client reaches it: 30 CONNECTs all get a CONNACK from the two others.
    let before_killed = brokers[2].clients();
    let first = ids(&format!("{kind}-down"), 0..30);
    let mut held: Vec<TcpStream> = first.iter().map(|id| mqtt_connect(port, id)).collect();
    assert!(
        wait_until(Duration::from_secs(5), || {
            let now: Vec<Vec<String>> = brokers.iter().map(|b| b.clients()).collect();
            first.iter().all(|id| now[0].contains(id) || now[1].contains(id))
        }),
        "{kind}: not every client is on broker_0 or broker_1"
    );
    assert_eq!(brokers[2].clients(), before_killed, "{kind}: the killed broker got clients");
    let counts: Vec<usize> =
        brokers.iter().map(|b| first.iter().filter(|id| b.clients().contains(id)).count()).collect();
    eprintln!("{kind}: 30 clients after DOWN: {counts:?} on broker_0..2");
    assert_eq!(counts[0] + counts[1], 30, "{kind}: per broker {counts:?}");
    assert_eq!(counts[2], 0, "{kind}: per broker {counts:?}");
    assert!(counts[0].abs_diff(counts[1]) <= 1, "{kind}: leastconn over two brokers gave {counts:?}");

    // 2. Stay down while nothing listens (several checks), then come back.
    thread::sleep(INTER * 4);
    let restart_at = Instant::now();
    assert!(hapx.matching("broker_2 is UP").is_empty(), "{kind}: UP before the restart: {}", hapx.text());
    brokers[2].restart();
    let listening_at = Instant::now();
    let (up_at, up) = hapx
        .wait_line("Server mqtt/broker_2 is UP", down_at, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{kind}: broker_2 never marked UP again: {}", hapx.text()));
    assert!(up_at > restart_at, "{kind}: UP line before the restart");
    let took = up_at - listening_at;
    let bound = INTER * (RISE + 1);
    eprintln!("{kind}: restarted broker_2 marked UP {} ms after it listened (ideal bound {} ms)", ms(took), ms(bound));
    assert!(took <= bound * SLACK, "{kind}: UP {} ms after the restart, bound {} ms × {SLACK}", ms(took), ms(bound));
    assert!(
        up_at - restart_at + JITTER >= INTER * (RISE - 1),
        "{kind}: UP {} ms after the restart: sooner than {RISE} checks allow",
        ms(up_at - restart_at)
    );
    assert!(
        up.contains("Server mqtt/broker_2 is UP, reason: Layer4 check passed")
            && up.contains("3 active and 0 backup servers online."),
        "{kind}: UP line: {up}"
    );

    // Under leastconn the empty broker takes the next 15 clients, then all three share.
    let second = ids(&format!("{kind}-up"), 0..30);
    for id in &second[..15] {
        held.push(mqtt_connect(port, id));
    }
    assert!(wait_clients(brokers[2].as_ref(), &second[..15]), "{kind}: broker_2 has {:?}", brokers[2].clients());
    for id in &second[15..] {
        held.push(mqtt_connect(port, id));
    }
    assert!(
        wait_until(Duration::from_secs(5), || {
            let now: Vec<Vec<String>> = brokers.iter().map(|b| b.clients()).collect();
            second.iter().all(|id| now.iter().any(|c| c.contains(id)))
        }),
        "{kind}: a client of the second wave is on no broker"
    );
    let counts: Vec<usize> =
        brokers.iter().map(|b| second.iter().filter(|id| b.clients().contains(id)).count()).collect();
    eprintln!("{kind}: 30 clients after UP: {counts:?} on broker_0..2");
    assert_eq!(counts.iter().sum::<usize>(), 30, "{kind}: {counts:?}");
    assert!(
        (19..=21).contains(&counts[2]),
        "{kind}: broker_2 got {} of 30 (15 + a third of 15): {counts:?}",
        counts[2]
    );
    // Every client still works.
    for (i, s) in held.iter_mut().enumerate() {
        ping(s).unwrap_or_else(|e| panic!("{kind}: client {i} lost: {e}"));
    }
    assert!(hapx.alive(), "{kind}: hapx exited: {}", hapx.text());
}

#[test]
fn mosquitto_killed_broker_down_within_fall_checks_then_up_after_rise() {
    let Some(ms) = mosquittos(3) else { return };
    let mut brokers: Vec<Box<dyn Broker>> = ms.into_iter().map(|m| Box::new(m) as Box<dyn Broker>).collect();
    down_then_up("mosquitto", &mut brokers);
}

#[test]
fn rumqttd_killed_broker_down_within_fall_checks_then_up_after_rise() {
    let mut brokers: Vec<Box<dyn Broker>> =
        forwarded_rumqttds(3).into_iter().map(|f| Box::new(f) as Box<dyn Broker>).collect();
    down_then_up("rumqttd", &mut brokers);
}

// ---------------------------------------------------------------------------------------------
// 3. on-marked-down shutdown-sessions.

/// Nine clients over three brokers; `fail` makes broker_2 fail its checks without closing
/// anything itself. Its clients must be cut once it is marked down, the others kept.
fn marked_down_cuts_its_sessions(
    kind: &str,
    brokers: &[&dyn Broker],
    check_opts: &dyn Fn(usize) -> String,
    extra: &str,
    fail: &mut dyn FnMut(),
    down_bound: Duration,
) -> Watched {
    let ports: Vec<u16> = brokers.iter().map(|b| b.port()).collect();
    let port = free_port();
    let opts = |i| format!("{} on-marked-down shutdown-sessions", check_opts(i));
    let mut hapx = Watched::start(&hapx_cfg(port, &ports, &opts, extra), port);
    thread::sleep(INTER * 3);
    assert!(hapx.matching(" is DOWN").is_empty(), "{kind}: a live broker went down: {}", hapx.text());

    let names = ids(&format!("{kind}-sess"), 0..9);
    let clients: Vec<TcpStream> = names.iter().map(|id| mqtt_connect(port, id)).collect();
    assert!(
        wait_until(Duration::from_secs(5), || {
            let now: Vec<Vec<String>> = brokers.iter().map(|b| b.clients()).collect();
            names.iter().all(|id| now.iter().any(|c| c.contains(id)))
        }),
        "{kind}: a client is on no broker"
    );
    let on2: Vec<bool> = names.iter().map(|id| brokers[2].clients().contains(id)).collect();
    assert_eq!(on2.iter().filter(|&&b| b).count(), 3, "{kind}: leastconn put {on2:?} on broker_2");

    // broker_2's clients wait for their end in threads, which note when it came.
    let mut watchers = Vec::new();
    let mut others = Vec::new();
    for (i, mut s) in clients.into_iter().enumerate() {
        if on2[i] {
            s.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
            watchers.push(thread::spawn(move || {
                let end = read_to_end(&mut s);
                (Instant::now(), end)
            }));
        } else {
            others.push(s);
        }
    }

    let failed_at = Instant::now();
    fail();
    let (down_at, down) = hapx
        .wait_line("Server mqtt/broker_2 is DOWN", failed_at, Duration::from_secs(15))
        .unwrap_or_else(|| panic!("{kind}: broker_2 never marked DOWN: {}", hapx.text()));
    let took = down_at - failed_at;
    eprintln!("{kind}: failing broker_2 marked DOWN after {} ms: {down}", ms(took));
    assert!(took <= down_bound * SLACK, "{kind}: DOWN after {} ms, bound {} ms × {SLACK}", ms(took), ms(down_bound));

    for w in watchers {
        let (closed_at, end) = w.join().expect("watcher");
        assert!(end.closed(), "{kind}: a client of broker_2 is still connected 15 s later ({end:?})");
        assert!(end.data().is_empty(), "{kind}: unexpected bytes {:02x?}", end.data());
        assert!(
            closed_at + JITTER >= failed_at + INTER * (FALL - 1),
            "{kind}: client cut {} ms after broker_2 started failing, before it could be marked down",
            ms(closed_at - failed_at)
        );
        let after = closed_at.saturating_duration_since(down_at);
        eprintln!("{kind}: a client of broker_2 saw {end:?} {} ms after the DOWN line", ms(after));
        assert!(after <= Duration::from_secs(1), "{kind}: client cut {} ms after the DOWN line", ms(after));
    }
    for (i, s) in others.iter_mut().enumerate() {
        ping(s).unwrap_or_else(|e| panic!("{kind}: client {i} of a healthy broker lost: {e}"));
    }
    assert!(hapx.alive(), "{kind}: hapx exited: {}", hapx.text());
    hapx
}

#[test]
fn mosquitto_broker_marked_down_has_its_sessions_shut_others_kept() {
    let Some(ms) = mosquittos(3) else { return };
    // Each broker's check goes to a health port of its own (`check port`): closing broker_2's
    // marks it down while mosquitto itself keeps serving its sessions, so any cut the clients
    // see comes from hapx.
    let mut health: Vec<Option<Server>> = (0..3).map(|_| Some(Server::start(|_, _| {}))).collect();
    let hports: Vec<u16> = health.iter().flatten().map(|h| h.port).collect();
    let refs: Vec<&dyn Broker> = ms.iter().map(|m| m as &dyn Broker).collect();
    let _hapx = marked_down_cuts_its_sessions(
        "mosquitto",
        &refs,
        &|i| format!(" port {}", hports[i]),
        "",
        &mut || {
            health[2] = None;
            assert!(wait_until(Duration::from_secs(2), || !is_listening(hports[2])), "health port still open");
        },
        INTER * (FALL + 1),
    );
}

/// The same with a hung broker (SIGSTOP) and an MQTT check.
#[test]
fn mosquitto_hung_broker_marked_down_has_its_sessions_shut_others_kept() {
    let Some(ms) = mosquittos(3) else { return };
    // A stopped mosquitto still completes TCP handshakes, so the check must speak MQTT: CONNECT
    // (empty client id, clean session), CONNACK expected. It fails by timing out after `inter`.
    let extra = "    option tcp-check\n    tcp-check send-binary 100c00044d5154540402003c0000\n    \
                 tcp-check expect binary 20020000\n";
    let refs: Vec<&dyn Broker> = ms.iter().map(|m| m as &dyn Broker).collect();
    let _hapx = marked_down_cuts_its_sessions(
        "mosquitto",
        &refs,
        &|_| String::new(),
        extra,
        &mut || ms[2].hang(),
        // Each failing check lasts up to `inter` and the next one starts `inter` later.
        INTER * (2 * FALL + 1),
    );
}

#[test]
fn rumqttd_broker_marked_down_has_its_sessions_shut_others_kept() {
    let mut fwd = forwarded_rumqttds(3);
    rumqttd_shutdown_sessions(&mut fwd);
}

/// broker_2's forwarder stops listening (checks refused) but keeps its sessions: any cut the
/// clients see comes from hapx.
fn rumqttd_shutdown_sessions(fwd: &mut [Forwarder]) {
    let (stay, goes) = fwd.split_at_mut(2);
    let going = &mut goes[0];
    let going_clients = going.shared.clone();
    let going_port = going.port;
    // Shut the listener through its stop flag (the acceptor drops it) while the scenario
    // holds shared views of the brokers.
    let stop_flag = going.stop.clone();
    let mut acceptor = going.acceptor.take();
    let view = FwdView { port: going_port, shared: going_clients.clone() };
    let refs: Vec<&dyn Broker> = vec![&stay[0], &stay[1], &view];
    let hapx = marked_down_cuts_its_sessions(
        "rumqttd",
        &refs,
        &|_| String::new(),
        "",
        &mut || {
            stop_flag.store(true, Ordering::Release);
            if let Some(a) = acceptor.take() {
                let _ = a.join();
            }
            assert!(!is_listening(going_port), "forwarder still listens");
            // (A check accepted just before the close may still be in flight.)
            let open = going_clients.sessions.lock().map(|s| s.len()).unwrap_or(0);
            assert!(open >= 3, "broker_2's forwarder carries {open} sessions, not its 3 clients'");
        },
        INTER * (FALL + 1),
    );
    // hapx closed its side of broker_2's sessions too (the forwarder did not).
    assert!(
        wait_until(Duration::from_secs(2), || going_clients.sessions.lock().map(|s| s.len()).unwrap_or(0) == 0),
        "hapx left {} sessions open to the broker marked down",
        going_clients.sessions.lock().map(|s| s.len()).unwrap_or(0)
    );
    drop(hapx);
}

/// A shared view of a forwarder for the scenario (its records only).
struct FwdView {
    port: u16,
    shared: Arc<FwdShared>,
}

impl Broker for FwdView {
    fn port(&self) -> u16 {
        self.port
    }
    fn clients(&self) -> Vec<String> {
        self.shared.clients.lock().map(|c| c.clone()).unwrap_or_default()
    }
    fn kill(&mut self) {}
    fn restart(&mut self) {}
}

/// The `tcp-check` lines of a config reach the check engine as written: an MQTT check
/// (CONNECT, expect CONNACK) passes against a live broker.
#[test]
fn tcp_check_lines_from_the_config_run_against_a_real_broker() {
    let Some(ms) = mosquittos(1) else { return };
    let front = common::free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    timeout check 1s\n\
         listen mqtt\n    bind 127.0.0.1:{front}\n    option tcp-check\n    tcp-check connect\n\
         \x20   tcp-check send-binary 100c00044d5154540402003c0000\n    tcp-check expect binary 20020000\n\
         \x20   server broker_1 127.0.0.1:{} check inter 200ms fall 1 rise 1\n",
        ms[0].port
    );
    let proxy = common::start_hapx(&cfg, &[front]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    let err = proxy.stderr();
    assert!(!err.contains("is DOWN"), "the MQTT check failed against a live broker:\n{err}");
}
