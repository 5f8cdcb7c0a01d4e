//! The checker thread: one mio `Poll`, one timing wheel, one small state machine per
//! server running its steps (connect, send, expect) without blocking.
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use super::health::{self, Counts, Health};
use super::rules::{self, Action, Matcher, Step};
use super::status::{self, CheckStatus, Outcome};
use super::{ChangeKind, CheckConfig, ExpectKind, Notify, OnError, Severity, StateChange, Target};
use crate::runtime::state::ServerState;
use crate::runtime::timer::{TimerId, Wheel};

/// HAProxy's default buffer size: a response larger than this counts as complete.
const READ_MAX: usize = 16384;
const WAKER: Token = Token(usize::MAX);
/// Events handled per poll round, and timers handled per round: bounded work per turn.
const EVENTS_PER_ROUND: usize = 1024;
const TIMERS_PER_ROUND: usize = 4096;
/// How long `stop()` waits for the thread before leaving it behind.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// Starts the checker thread.
pub struct Checker;

enum Command {
    /// `error-limit` consecutive traffic errors reached on this server.
    Observed { server: usize, count: u32 },
}

/// The caller's side: report traffic errors, stop the thread.
pub struct CheckerHandle {
    stop: Arc<AtomicBool>,
    waker: Option<Arc<Waker>>,
    commands: Sender<Command>,
    /// Behind a mutex so that the handle can be shared (a Receiver is not Sync).
    done: std::sync::Mutex<Receiver<()>>,
    thread: Option<JoinHandle<()>>,
    /// Server identity (address of its state) to its position among the targets.
    index: HashMap<usize, usize>,
    observed: Arc<Vec<Observed>>,
}

struct Observed {
    enabled: bool,
    limit: u32,
    errors: AtomicU32,
}

fn key(server: &ServerState) -> usize {
    server as *const ServerState as usize
}

impl CheckerHandle {
    /// A failed connection to `server` on real traffic (`observe layer4`). Thread-safe.
    pub fn report_connection_error(&self, server: &ServerState) {
        let Some(&i) = self.index.get(&key(server)) else { return };
        let Some(o) = self.observed.get(i) else { return };
        if !o.enabled {
            return;
        }
        let count = o.errors.fetch_add(1, Ordering::AcqRel) + 1;
        if count >= o.limit.max(1) {
            o.errors.store(0, Ordering::Release);
            if self.commands.send(Command::Observed { server: i, count }).is_ok() {
                if let Some(w) = &self.waker {
                    let _ = w.wake();
                }
            }
        }
    }

    /// A successful connection to `server` on real traffic: clears the error run.
    pub fn report_connection_ok(&self, server: &ServerState) {
        if let Some(o) = self.index.get(&key(server)).and_then(|&i| self.observed.get(i)) {
            o.errors.store(0, Ordering::Release);
        }
    }

    /// Stops the thread and waits for it, a few seconds at most.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(w) = &self.waker {
            let _ = w.wake();
        }
        if let Some(t) = self.thread.take() {
            let stopped = self.done.lock().map(|d| d.recv_timeout(STOP_WAIT).is_ok()).unwrap_or(false);
            if stopped {
                let _ = t.join();
            } else {
                log::warn!("health-check thread did not stop within {STOP_WAIT:?}; leaving it");
            }
        }
    }
}

impl Drop for CheckerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Checker {
    /// Starts checking `targets` on a thread of its own.
    pub fn spawn(targets: Vec<Target>) -> CheckerHandle {
        Checker::spawn_with_peers(targets, Vec::new())
    }

    /// Like `spawn`, with the backends' unchecked servers as `(backend, server)`: they count
    /// in "N active and M backup servers left".
    pub fn spawn_with_peers(targets: Vec<Target>, peers: Vec<(String, Arc<ServerState>)>) -> CheckerHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let mut index = HashMap::new();
        let mut observed = Vec::with_capacity(targets.len());
        for (i, (state, cfg, _, _)) in targets.iter().enumerate() {
            index.insert(key(state), i);
            observed.push(Observed { enabled: cfg.observe_layer4, limit: cfg.error_limit, errors: AtomicU32::new(0) });
        }
        let observed = Arc::new(observed);
        let poll = Poll::new();
        let (poll, waker) = match poll {
            Ok(p) => match Waker::new(p.registry(), WAKER) {
                Ok(w) => (Some(p), Some(Arc::new(w))),
                Err(e) => {
                    log::error!("health checks disabled: cannot create a waker: {e}");
                    (None, None)
                }
            },
            Err(e) => {
                log::error!("health checks disabled: cannot create a poller: {e}");
                (None, None)
            }
        };
        let thread = poll.and_then(|poll| {
            let stop2 = Arc::clone(&stop);
            let mut engine = Engine::new(poll, targets, peers, rx, stop2, Arc::clone(&observed));
            std::thread::Builder::new()
                .name("hapx-checks".to_string())
                .spawn(move || {
                    engine.run();
                    let _ = done_tx.send(());
                })
                .map_err(|e| log::error!("health checks disabled: cannot start their thread: {e}"))
                .ok()
        });
        CheckerHandle { stop, waker, commands: tx, done: std::sync::Mutex::new(done_rx), thread, index, observed }
    }
}

struct Backend {
    name: String,
    listen: bool,
    members: Vec<Arc<ServerState>>,
}

impl Backend {
    fn counts(&self) -> Counts {
        let mut c = Counts { active: 0, backup: 0 };
        for s in &self.members {
            if s.eligible() {
                if s.backup {
                    c.backup += 1;
                } else {
                    c.active += 1;
                }
            }
        }
        c
    }
}

/// One check in progress.
struct Run {
    step: usize,
    stream: Option<TcpStream>,
    connected: bool,
    /// Bytes of the current send step still to write, and how far we are.
    out: Vec<u8>,
    out_pos: usize,
    sending: bool,
    inbuf: Vec<u8>,
    eos: bool,
    error: Option<io::Error>,
    must_read: bool,
    started: Instant,
    deadline: Instant,
}

struct Server {
    state: Arc<ServerState>,
    cfg: CheckConfig,
    steps: Vec<Step>,
    backend: usize,
    notify: Notify,
    health: Health,
    last_status: Option<CheckStatus>,
    run: Option<Run>,
    /// Its one timer: the next check, or the running check's deadline.
    timer: Option<TimerId>,
    next_at: Instant,
}

enum Eval {
    /// Waiting for I/O.
    Wait,
    Done(Outcome),
}

struct Engine {
    poll: Poll,
    servers: Vec<Server>,
    backends: Vec<Backend>,
    timers: Wheel<usize>,
    /// Timers fired and not handled yet (beyond `TIMERS_PER_ROUND`).
    fired: Vec<(TimerId, usize)>,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
    /// Traffic error runs, shared with the handle.
    observed: Arc<Vec<Observed>>,
    rng: u64,
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Engine {
    fn new(
        poll: Poll,
        targets: Vec<Target>,
        peers: Vec<(String, Arc<ServerState>)>,
        commands: Receiver<Command>,
        stop: Arc<AtomicBool>,
        observed: Arc<Vec<Observed>>,
    ) -> Engine {
        let now = Instant::now();
        let mut backends: Vec<Backend> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut servers = Vec::with_capacity(targets.len());
        for (state, cfg, backend, notify) in targets {
            let b = *by_name.entry(backend.clone()).or_insert_with(|| {
                backends.push(Backend { name: backend.clone(), listen: cfg.listen, members: Vec::new() });
                backends.len() - 1
            });
            if let Some(be) = backends.get_mut(b) {
                be.members.push(Arc::clone(&state));
            }
            let steps = if cfg.tcp_check { rules::compile(&cfg.rules) } else { rules::compile(&[]) };
            let health = Health::new(cfg.rise, cfg.fall, cfg.init_state);
            state.up.store(health.healthy(), Ordering::Release);
            servers.push(Server {
                state,
                cfg,
                steps,
                backend: b,
                notify,
                health,
                last_status: None,
                run: None,
                timer: None,
                next_at: now,
            });
        }
        for (backend, state) in peers {
            if let Some(&b) = by_name.get(&backend) {
                if let Some(be) = backends.get_mut(b) {
                    if !be.members.iter().any(|m| Arc::ptr_eq(m, &state)) {
                        be.members.push(state);
                    }
                }
            }
        }
        let seed = u64::from(std::process::id()) ^ now.elapsed().as_nanos() as u64 ^ 0x9E37_79B9_7F4A_7C15;
        let mut engine = Engine {
            poll,
            servers,
            backends,
            timers: Wheel::new(now),
            fired: Vec::new(),
            commands,
            stop,
            observed,
            rng: seed | 1,
        };
        engine.schedule_first(now);
        engine
    }

    /// HAProxy spreads the first checks: server k of n starts at min-interval × k / n, the
    /// min-interval taken over intervals of at least 1s.
    fn schedule_first(&mut self, now: Instant) {
        let n = self.servers.len();
        let threshold = Duration::from_millis(1000);
        let mininter = self
            .servers
            .iter()
            .map(|s| s.health.interval(&s.cfg, s.state.up.load(Ordering::Acquire)))
            .filter(|i| *i >= threshold)
            .min()
            .unwrap_or_default();
        for pos in 0..n {
            let Some(s) = self.servers.get(pos) else { continue };
            let own = s.health.interval(&s.cfg, s.state.up.load(Ordering::Acquire));
            let spread = mininter.max(own);
            let offset = spread.mul_f64(pos as f64 / n as f64);
            self.set_timer(pos, now + offset);
        }
    }

    fn set_timer(&mut self, idx: usize, at: Instant) {
        if let Some(s) = self.servers.get_mut(idx) {
            s.next_at = at;
            self.timers.set(&mut s.timer, idx, Some(at));
        }
    }

    fn random_unit(&mut self) -> f64 {
        // xorshift64: jitter only, no need for quality.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(EVENTS_PER_ROUND);
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            let timeout = if self.fired.is_empty() {
                self.timers.next_wake().map(|at| at.saturating_duration_since(now))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("health-check poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            for ev in events.iter() {
                let token = ev.token();
                if token != WAKER {
                    self.advance(token.0);
                }
            }
            while let Ok(cmd) = self.commands.try_recv() {
                match cmd {
                    Command::Observed { server, count } => self.observed_errors(server, count),
                }
            }
            let mut fired = std::mem::take(&mut self.fired);
            self.timers.expire(Instant::now(), &mut fired);
            let n = fired.len().min(TIMERS_PER_ROUND);
            for &(id, idx) in fired.iter().take(n) {
                // A timer re-armed since it fired has a new id: this one is stale.
                let Some(s) = self.servers.get_mut(idx).filter(|s| s.timer == Some(id)) else { continue };
                s.timer = None;
                self.on_timer(idx);
            }
            fired.drain(..n);
            self.fired = fired;
        }
        for idx in 0..self.servers.len() {
            self.close(idx);
        }
    }

    fn on_timer(&mut self, idx: usize) {
        let running = self.servers.get(idx).is_some_and(|s| s.run.is_some());
        if running {
            let outcome = self.servers.get(idx).map(timeout_outcome);
            if let Some(o) = outcome {
                self.finish(idx, o);
            }
        } else {
            self.start(idx);
        }
    }

    fn start(&mut self, idx: usize) {
        let Some(s) = self.servers.get_mut(idx) else { return };
        let now = Instant::now();
        s.run = Some(Run {
            step: 0,
            stream: None,
            connected: false,
            out: Vec::new(),
            out_pos: 0,
            sending: false,
            inbuf: Vec::new(),
            eos: false,
            error: None,
            must_read: true,
            started: now,
            deadline: now + s.cfg.inter,
        });
        self.advance(idx);
    }

    /// Runs the current check as far as it goes without blocking.
    fn advance(&mut self, idx: usize) {
        let registry = self.poll.registry();
        let Some(s) = self.servers.get_mut(idx) else { return };
        if s.run.is_none() {
            return;
        }
        match eval_steps(s, registry, Token(idx)) {
            Eval::Done(outcome) => self.finish(idx, outcome),
            Eval::Wait => {
                // The run's deadline is the server's only timer while it runs.
                let deadline = s.run.as_ref().map(|r| r.deadline);
                if let Some(at) = deadline {
                    if s.next_at != at || s.timer.is_none() {
                        self.set_timer(idx, at);
                    }
                }
            }
        }
    }

    fn close(&mut self, idx: usize) {
        let registry = self.poll.registry();
        if let Some(s) = self.servers.get_mut(idx) {
            if let Some(mut run) = s.run.take() {
                if let Some(mut stream) = run.stream.take() {
                    let _ = registry.deregister(&mut stream);
                }
            }
        }
    }

    /// Ends the current check: count it, report, schedule the next one.
    fn finish(&mut self, idx: usize, outcome: Outcome) {
        self.close(idx);
        self.apply(idx, outcome);
        let Some(s) = self.servers.get(idx) else { return };
        let inter = s.health.interval(&s.cfg, s.state.up.load(Ordering::Acquire));
        let spread = s.cfg.spread_checks;
        let mut next = inter;
        if spread > 0 {
            let rv = inter.mul_f64(f64::from(spread.min(50)) / 100.0);
            let jitter = rv.mul_f64(2.0 * self.random_unit());
            next = (inter + rv).saturating_sub(jitter);
        }
        self.set_timer(idx, Instant::now() + next);
    }

    /// `error-limit` reached on real traffic: act as `on-error` says.
    fn observed_errors(&mut self, idx: usize, count: u32) {
        let Some(s) = self.servers.get_mut(idx) else { return };
        let info = format!("Detected {count} consecutive errors, last one was: L4 unsuccessful connection");
        let outcome = Outcome::new(CheckStatus::Hana, info.as_bytes(), None);
        match s.cfg.on_error {
            OnError::FastInter => {}
            OnError::SuddenDeath => {
                if s.health.value > s.health.rise {
                    s.health.value = s.health.rise + 1;
                }
                self.apply(idx, outcome);
            }
            OnError::FailCheck => self.apply(idx, outcome),
            OnError::MarkDown => {
                s.health.value = s.health.rise;
                self.apply(idx, outcome);
            }
        }
        let Some(s) = self.servers.get(idx) else { return };
        let at = Instant::now() + s.cfg.fastinter;
        if s.run.is_none() && at < s.next_at {
            self.set_timer(idx, at);
        }
    }

    /// Counts one result and reports what changed (HAProxy's set_server_check_status, then
    /// check_notify_failure / check_notify_success).
    fn apply(&mut self, idx: usize, outcome: Outcome) {
        let Some(s) = self.servers.get_mut(idx) else { return };
        let passed = outcome.status.passed();
        let moved = s.health.record(passed);
        if passed {
            // A passed check clears the run of traffic errors, as in HAProxy.
            if let Some(o) = self.observed.get(idx) {
                o.errors.store(0, Ordering::Release);
            }
        }
        let changed_status = s.last_status != Some(outcome.status);
        s.last_status = Some(outcome.status);
        let backup = s.state.backup;
        let full_name = s.state.full_name.clone();
        let backend_name = self.backends.get(s.backend).map(|b| b.name.clone()).unwrap_or_default();
        let base = StateChange {
            server: s.state.name.clone(),
            backend: backend_name.clone(),
            kind: ChangeKind::CheckResult,
            up: s.state.up.load(Ordering::Acquire),
            text: String::new(),
            severity: Severity::Warning,
            log_severity: Severity::Notice,
            backend_now_empty: false,
            no_server_text: None,
            no_server_log: None,
            shutdown_sessions: false,
            shutdown_backup_sessions: false,
        };
        if s.cfg.log_health_checks && (changed_status || moved) {
            let status = s.health.status_text(s.state.weight);
            let text = health::check_text(&full_name, backup, passed, &outcome.reason_text(), &status);
            (s.notify)(&StateChange { text, ..base.clone() });
        }
        let in_maint = s.state.maintenance.load(Ordering::Acquire);
        let was_up = s.state.up.load(Ordering::Acquire);
        let go_down = !passed && s.health.value == 0 && was_up && !in_maint;
        let go_up = passed && s.health.healthy() && !was_up && !in_maint;
        if !go_down && !go_up {
            return;
        }
        // With log-health-checks the reason was already printed on the check line.
        let reason = if s.cfg.log_health_checks { String::new() } else { outcome.reason_text() };
        let Some(be) = self.backends.get(s.backend) else { return };
        let before = be.counts();
        s.state.up.store(go_up, Ordering::Release);
        let after = be.counts();
        let empty = before.active + before.backup > 0 && after.active + after.backup == 0;
        let (no_text, no_log) = health::no_server_texts(&be.name, be.listen);
        let change = if go_down {
            let cur = s.state.cur.load(Ordering::Acquire);
            let queued = s.state.queued.load(Ordering::Acquire);
            StateChange {
                kind: ChangeKind::Down,
                up: false,
                text: health::down_text(&full_name, backup, &reason, after, cur, queued),
                log_severity: Severity::Alert,
                shutdown_sessions: s.cfg.on_marked_down_shutdown_sessions,
                ..base
            }
        } else {
            let queued = s.state.queued.load(Ordering::Acquire);
            StateChange {
                kind: ChangeKind::Up,
                up: true,
                text: health::up_text(&full_name, backup, &reason, after, queued),
                shutdown_backup_sessions: s.cfg.on_marked_up_shutdown_backup_sessions && !backup && s.state.weight > 0,
                ..base
            }
        };
        let change = StateChange {
            backend_now_empty: empty,
            no_server_text: empty.then_some(no_text),
            no_server_log: empty.then_some(no_log),
            ..change
        };
        (s.notify)(&change);
    }
}

/// Where a connect step goes: the check address with the step's `port`/`addr`.
fn connect_addr(base: SocketAddr, port: Option<u16>, addr: Option<std::net::IpAddr>) -> SocketAddr {
    let mut a = base;
    if let Some(ip) = addr {
        a.set_ip(ip);
    }
    if let Some(p) = port {
        a.set_port(p);
    }
    a
}

/// " at step N of tcp-check (what)[ comment: 'c']", or the initial-connect form; empty for
/// plain checks. `step` is the step being run or waited on.
fn step_suffix(tcp_check: bool, step: Option<&Step>) -> Vec<u8> {
    if !tcp_check {
        return Vec::new();
    }
    let Some(step) = step else { return b" at step 1 of tcp-check".to_vec() };
    if step.id == 0 {
        return b" at initial connection step of tcp-check".to_vec();
    }
    let mut out = format!(" at step {} of tcp-check", step.id).into_bytes();
    match &step.action {
        Action::Connect { port: Some(p), .. } => out.extend_from_slice(format!(" (connect port {p})").as_bytes()),
        Action::Connect { .. } => out.extend_from_slice(b" (connect)"),
        Action::Send(_) => out.extend_from_slice(b" (send)"),
        Action::Expect { rule, matcher, .. } => match (rule.kind, matcher) {
            (ExpectKind::String | ExpectKind::Binary, Matcher::Bytes(p)) => {
                // HAProxy prints the pattern with %.*s: it stops at a NUL byte.
                let shown = p.split(|&b| b == 0).next().unwrap_or_default();
                let word: &[u8] = if rule.kind == ExpectKind::String { b"string" } else { b"binary" };
                out.extend_from_slice(b" (expect ");
                out.extend_from_slice(word);
                out.extend_from_slice(b" '");
                out.extend_from_slice(shown);
                out.extend_from_slice(b"')");
            }
            (ExpectKind::Rbinary, _) => out.extend_from_slice(b" (expect binary regex)"),
            _ => out.extend_from_slice(b" (expect regex)"),
        },
    }
    if let Some(c) = &step.comment {
        out.extend_from_slice(format!(" comment: '{c}'").as_bytes());
    }
    out
}

/// What an expired check reports (HAProxy's chk_report_conn_err with `expired`).
fn timeout_outcome(s: &Server) -> Outcome {
    let Some(run) = &s.run else { return Outcome::new(CheckStatus::L4Tout, b"", Some(0)) };
    let step = s.steps.get(run.step);
    let info = step_suffix(s.cfg.tcp_check, step);
    let status = if !run.connected {
        CheckStatus::L4Tout
    } else {
        match step.map(|st| &st.action) {
            Some(Action::Expect { rule, .. }) => rule.tout_status.unwrap_or(CheckStatus::L7Tout),
            _ => CheckStatus::L7Tout,
        }
    };
    Outcome::new(status, &info, Some(elapsed_ms(run.started)))
}

/// A connection error: strerror text then the step suffix.
fn conn_error(tcp_check: bool, step: Option<&Step>, started: Instant, status: CheckStatus, err: &io::Error) -> Eval {
    let mut info = status::strerror(err).into_bytes();
    info.extend_from_slice(&step_suffix(tcp_check, step));
    Eval::Done(Outcome::new(status, &info, Some(elapsed_ms(started))))
}

fn done(started: Instant, status: CheckStatus, info: &[u8]) -> Eval {
    Eval::Done(Outcome::new(status, info, Some(elapsed_ms(started))))
}

/// Reads what is available into `run.inbuf`; returns the number of bytes read.
fn read_available(run: &mut Run) -> usize {
    let mut cur_read = 0usize;
    if run.eos || run.error.is_some() {
        return 0;
    }
    let Some(stream) = run.stream.as_mut() else { return 0 };
    let mut buf = [0u8; 4096];
    while run.inbuf.len() < READ_MAX {
        let room = (READ_MAX - run.inbuf.len()).min(buf.len());
        match stream.read(buf.get_mut(..room).unwrap_or_default()) {
            Ok(0) => {
                run.eos = true;
                break;
            }
            Ok(n) => {
                cur_read += n;
                run.inbuf.extend_from_slice(buf.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                run.error = Some(e);
                break;
            }
        }
    }
    cur_read
}

/// Whether an expect step's pattern is in the received bytes.
fn expect_matches(kind: ExpectKind, matcher: &Matcher, data: &[u8]) -> bool {
    match matcher {
        Matcher::Bytes(p) => p.is_empty() || data.windows(p.len()).any(|w| w == p.as_slice()),
        Matcher::Regex(r) if kind == ExpectKind::Rbinary => {
            let hex: String = data.iter().map(|b| format!("{b:02X}")).collect();
            r.is_match(hex.as_bytes())
        }
        Matcher::Regex(r) => r.is_match(data),
    }
}

/// "TCPCHK did not match content ..." / "TCPCHK matched unwanted content ...".
fn expect_failure_info(step: &Step, rule: &super::Expect, matched: bool) -> Vec<u8> {
    let mut info = if matched {
        "TCPCHK matched unwanted content".to_string()
    } else {
        "TCPCHK did not match content".to_string()
    };
    match rule.kind {
        ExpectKind::String => info.push_str(&format!(" '{}' at step {}", rule.pattern, step.id)),
        ExpectKind::Binary => info.push_str(&format!(" (binary) at step {}", step.id)),
        ExpectKind::Rstring => info.push_str(&format!(" (regex) at step {}", step.id)),
        ExpectKind::Rbinary => info.push_str(&format!(" (binary regex) at step {}", step.id)),
    }
    if let Some(c) = &step.comment {
        info.push_str(&format!(" comment: {c}"));
    }
    info.into_bytes()
}

/// Runs steps from the current one until one must wait or the check ends.
fn eval_steps(s: &mut Server, registry: &mio::Registry, token: Token) -> Eval {
    let Server { steps, run, cfg, state, .. } = s;
    let Some(run) = run.as_mut() else { return Eval::Wait };
    let tcp_check = cfg.tcp_check;
    // Each pass moves one step forward or returns; the guard only bounds a bug.
    for _ in 0..(steps.len() * 4 + 8) {
        let Some(step) = steps.get(run.step) else {
            return success(steps, run.started);
        };
        match &step.action {
            Action::Connect { port, addr, .. } => {
                if run.stream.is_none() {
                    let target = connect_addr(cfg.addr, *port, *addr);
                    let now = Instant::now();
                    run.deadline = now + cfg.inter;
                    if let (Some(_), Some(ct)) = (cfg.timeout, cfg.connect_timeout) {
                        run.deadline = run.deadline.min(now + ct);
                    }
                    run.connected = false;
                    run.inbuf.clear();
                    run.eos = false;
                    run.error = None;
                    match TcpStream::connect(target) {
                        Ok(mut stream) => {
                            let _ = stream.set_nodelay(true);
                            let interest = Interest::READABLE | Interest::WRITABLE;
                            if let Err(e) = registry.register(&mut stream, token, interest) {
                                return conn_error(tcp_check, Some(step), run.started, CheckStatus::SockErr, &e);
                            }
                            run.stream = Some(stream);
                        }
                        Err(e) => return conn_error(tcp_check, Some(step), run.started, CheckStatus::L4Con, &e),
                    }
                }
                if !run.connected {
                    let Some(stream) = run.stream.as_ref() else { return Eval::Wait };
                    match stream.take_error() {
                        Ok(Some(e)) | Err(e) => {
                            return conn_error(tcp_check, Some(step), run.started, CheckStatus::L4Con, &e)
                        }
                        Ok(None) => {}
                    }
                    match stream.peer_addr() {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => return Eval::Wait,
                        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => return Eval::Wait,
                        Err(e) => return conn_error(tcp_check, Some(step), run.started, CheckStatus::L4Con, &e),
                    }
                    run.connected = true;
                    if let Some(t) = cfg.timeout {
                        run.deadline = Instant::now() + t;
                    }
                }
                run.must_read = run.inbuf.is_empty();
                run.step += 1;
                // A later connect step opens a new connection.
                if matches!(steps.get(run.step).map(|st| &st.action), Some(Action::Connect { .. })) {
                    if let Some(mut old) = run.stream.take() {
                        let _ = registry.deregister(&mut old);
                    }
                }
            }
            Action::Send(data) => {
                if !run.sending {
                    run.out.clear();
                    run.out.extend_from_slice(data);
                    run.out_pos = 0;
                    run.sending = true;
                    // HAProxy drops what was received before a send.
                    run.inbuf.clear();
                }
                let Some(stream) = run.stream.as_mut() else { return Eval::Wait };
                while run.out_pos < run.out.len() {
                    let chunk = run.out.get(run.out_pos..).unwrap_or_default();
                    match stream.write(chunk) {
                        Ok(0) => return Eval::Wait,
                        Ok(n) => run.out_pos += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Eval::Wait,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return conn_error(tcp_check, Some(step), run.started, CheckStatus::SockErr, &e),
                    }
                }
                run.sending = false;
                run.must_read = true;
                run.step += 1;
            }
            Action::Expect { rule, matcher, head } => {
                if run.must_read {
                    let cur_read = read_available(run);
                    if run.inbuf.is_empty() {
                        if let Some(e) = run.error.take() {
                            return conn_error(tcp_check, Some(step), run.started, CheckStatus::SockErr, &e);
                        }
                    }
                    if cur_read == 0 {
                        if !run.eos && run.error.is_none() {
                            return Eval::Wait;
                        }
                        if run.inbuf.is_empty() {
                            let mut info = format!("TCPCHK got an empty response at step {}", step.id);
                            if let Some(c) = &step.comment {
                                info.push_str(&format!(" comment: '{c}'"));
                            }
                            let st = rule.error_status.unwrap_or(CheckStatus::L7Rsp);
                            return done(run.started, st, info.as_bytes());
                        }
                    }
                    run.must_read = false;
                }
                let last_read = run.eos || run.error.is_some() || run.inbuf.len() >= READ_MAX;
                if !last_read {
                    let short = match (matcher, rule.kind) {
                        (Matcher::Bytes(p), ExpectKind::String | ExpectKind::Binary) => run.inbuf.len() < p.len(),
                        _ => false,
                    };
                    let under_min = rule.min_recv > 0 && (run.inbuf.len() as i64) < rule.min_recv;
                    if short || under_min {
                        run.step = *head;
                        run.must_read = true;
                        return Eval::Wait;
                    }
                }
                let matched = expect_matches(rule.kind, matcher, &run.inbuf);
                if !matched && !last_read && rule.min_recv == -1 {
                    run.step = *head;
                    run.must_read = true;
                    return Eval::Wait;
                }
                if matched != rule.negate {
                    run.step += 1;
                    continue;
                }
                let info = expect_failure_info(step, rule, matched);
                return done(run.started, rule.error_status.unwrap_or(CheckStatus::L7Rsp), &info);
            }
        }
    }
    log::error!("health check of {} made no progress; failing it", state.full_name);
    done(run.started, CheckStatus::SockErr, b"")
}

/// All steps ran: the verdict depends on the last one (HAProxy's tcpcheck_main epilogue).
fn success(steps: &[Step], started: Instant) -> Eval {
    match steps.last().map(|st| &st.action) {
        Some(Action::Expect { rule, .. }) => done(started, rule.ok_status.unwrap_or(CheckStatus::L7Ok), b"(tcp-check)"),
        Some(Action::Connect { implicit: true, .. }) | None => done(started, CheckStatus::L4Ok, b""),
        Some(Action::Connect { .. }) => done(started, CheckStatus::L4Ok, b"(tcp-check)"),
        Some(Action::Send(_)) => done(started, CheckStatus::L7Ok, b"(tcp-check)"),
    }
}
