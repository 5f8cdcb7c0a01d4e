//! The runtime: a hand-rolled mio event loop forwarding bytes between clients and servers
//! with HAProxy's semantics. It consumes the typed `model::Config` and never sees text.
pub mod balance;
pub mod check;
pub mod conn;
pub mod error;
pub mod plan;
pub mod reactor;
pub mod session;
pub mod splice;
pub mod state;
pub mod stream;
pub mod sys;
pub mod timer;
pub mod traffic;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::model::Config;
pub use error::StartError;

/// How the process was asked to run (from the command line and `global`).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `-d`: debug mode (foreground, polling details on stderr).
    pub debug: bool,
    /// `-db` or `-d`: stay in the foreground even if `daemon` is set.
    pub foreground: bool,
    /// `-D` or `global daemon`.
    pub daemon: bool,
    pub pidfile: Option<std::path::PathBuf>,
}

/// A started proxy: its threads and the shared state.
pub struct Running {
    pub shared: Arc<reactor::Shared>,
    threads: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
    wakers: Vec<Arc<mio::Waker>>,
    /// Listening addresses of the first thread (all threads bind the same ones).
    pub addrs: Vec<std::net::SocketAddr>,
}

impl Running {
    /// Asks every thread to stop: soft (finish sessions) or hard (now).
    pub fn stop(&self, hard: bool) {
        let flag = if hard { &self.shared.hard_stop } else { &self.shared.soft_stop };
        flag.store(true, Ordering::Release);
        for w in &self.wakers {
            let _ = w.wake();
        }
    }

    /// Waits for every thread; the first error wins.
    pub fn join(self) -> std::io::Result<()> {
        let mut result = Ok(());
        for t in self.threads {
            let r = t.join().unwrap_or_else(|_| Err(std::io::Error::other("an event loop thread panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

/// A proxy whose sockets are bound but whose loops do not run yet: the place to drop
/// privileges and to go to the background, as HAProxy does after binding.
pub struct Prepared {
    shared: Arc<reactor::Shared>,
    workers: Vec<reactor::Worker>,
}

/// The file-descriptor budget: applies `ulimit-n`, or raises the soft limit to fit
/// `maxconn`; without `maxconn`, derives it from the limit as HAProxy does (two sockets
/// per session, a reserve for listeners and the rest).
fn fd_budget(config: &Config, listeners: usize) -> Result<u32, StartError> {
    const RESERVE: u64 = 20;
    let g = &config.global;
    if let Some(n) = g.ulimit_n.filter(|&n| n > 0) {
        sys::set_nofile_limit(n).map_err(|source| StartError::Limits { limit: n, source })?;
    }
    let (soft, hard) = sys::nofile_limit()?;
    let overhead = RESERVE + listeners as u64;
    match g.maxconn {
        Some(m) => {
            let need = u64::from(m) * 2 + overhead;
            if need > soft && g.ulimit_n.is_none() {
                // Best effort, as HAProxy: it warns later if the limit is too low.
                let _ = sys::set_nofile_limit(need.min(hard));
            }
            Ok(m)
        }
        None => {
            if g.ulimit_n.is_none() && hard > soft {
                let _ = sys::set_nofile_limit(hard);
            }
            let (soft, _) = sys::nofile_limit()?;
            Ok(u32::try_from(soft.saturating_sub(overhead) / 2).unwrap_or(u32::MAX).max(1))
        }
    }
}

/// Binds every listener on every thread. A failure leaves nothing bound.
pub fn prepare(config: &Config) -> Result<Prepared, StartError> {
    let mut plan = plan::build(config)?;
    let listeners: usize = plan.frontends.iter().map(|f| f.binds.len()).sum::<usize>() * plan.nbthread;
    plan.maxconn = fd_budget(config, listeners)?;
    let nbthread = plan.nbthread;
    let feconn = plan.frontends.iter().map(|_| AtomicU32::new(0)).collect();
    let bindconn = plan.frontends.iter().flat_map(|f| f.binds.iter().map(|_| AtomicU32::new(0))).collect();
    let shared = Arc::new(reactor::Shared {
        plan,
        actconn: AtomicU32::new(0),
        feconn,
        bindconn,
        soft_stop: AtomicBool::new(false),
        hard_stop: AtomicBool::new(false),
        paused: AtomicBool::new(false),
        kills: std::sync::Mutex::new(Vec::new()),
        kill_epoch: std::sync::atomic::AtomicU64::new(0),
        wakers: std::sync::OnceLock::new(),
        loads: (0..nbthread).map(|_| AtomicU32::new(0)).collect(),
        inboxes: (0..nbthread).map(|_| std::sync::Mutex::new(Vec::new())).collect(),
        limited: AtomicBool::new(false),
        checker: std::sync::OnceLock::new(),
    });
    let mut workers = Vec::new();
    for id in 0..nbthread {
        workers.push(reactor::Worker::new(shared.clone(), id)?);
    }
    Ok(Prepared { shared, workers })
}

impl Prepared {
    /// The bound addresses (every thread binds the same ones).
    pub fn addrs(&self) -> Vec<std::net::SocketAddr> {
        self.workers.first().map(|w| w.local_addrs()).unwrap_or_default()
    }

    /// Starts one thread per event loop, and the health-check thread.
    pub fn launch(self) -> Result<Running, StartError> {
        let addrs = self.addrs();
        let wakers: Vec<Arc<mio::Waker>> = self.workers.iter().map(|w| w.waker()).collect();
        // Set once, here, before any thread runs.
        let _ = self.shared.wakers.set(wakers.clone());
        if let Some(checker) = spawn_checks(&self.shared) {
            // Set once, here; the thread stops when the shared state goes away.
            let _ = self.shared.checker.set(checker);
        }
        let threads = self
            .workers
            .into_iter()
            .enumerate()
            .map(|(i, mut w)| {
                std::thread::Builder::new().name(format!("hapx-{i}")).spawn(move || {
                    let result = w.run();
                    sys::wake_supervisor();
                    result
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Running { shared: self.shared, threads, wakers, addrs })
    }
}

/// Prints a server state change as HAProxy does on stderr, and logs it to its backend.
fn report_state_change(shared: &reactor::Shared, backend: usize, change: &check::StateChange) {
    let pid = std::process::id();
    let tag = match change.severity {
        check::Severity::Emergency => "[EMERG]",
        check::Severity::Alert => "[ALERT]",
        check::Severity::Warning => "[WARNING]",
        check::Severity::Notice => "[NOTICE]",
    };
    eprintln!("{tag:<10} ({pid}) : {}", change.text);
    if let Some(text) = &change.no_server_text {
        eprintln!("{:<10} ({pid}) : {text}", "[ALERT]");
    }
    if let Some(log) = shared.plan.backend_logs.get(backend).and_then(Option::as_ref) {
        let level = match change.log_severity {
            check::Severity::Emergency => crate::logging::Severity::Emerg,
            check::Severity::Alert => crate::logging::Severity::Alert,
            check::Severity::Warning => crate::logging::Severity::Warning,
            check::Severity::Notice => crate::logging::Severity::Notice,
        };
        log.logger.send(level, &change.text);
        if let Some(text) = &change.no_server_log {
            log.logger.send(crate::logging::Severity::Emerg, text);
        }
    }
}

/// Starts the checker thread for every server with `check`, if any.
fn spawn_checks(shared: &Arc<reactor::Shared>) -> Option<check::CheckerHandle> {
    if shared.plan.checks.is_empty() {
        return None;
    }
    let mut targets: Vec<check::Target> = Vec::new();
    for c in &shared.plan.checks {
        let Some(backend) = shared.plan.backends.get(c.backend) else { continue };
        let weak = Arc::downgrade(shared);
        let bi = c.backend;
        let server = c.server.clone();
        let notify: check::Notify = Arc::new(move |change: &check::StateChange| {
            if change.kind == check::ChangeKind::Up {
                server.mark_up();
            }
            if let Some(shared) = weak.upgrade() {
                report_state_change(&shared, bi, change);
                if change.kind == check::ChangeKind::Up {
                    // A server back up takes sessions from the queues.
                    shared.wake_all();
                }
                if change.shutdown_sessions || change.shutdown_backup_sessions {
                    shared.request_kill(bi, &change.server, change.shutdown_backup_sessions);
                }
            }
        });
        targets.push((c.server.clone(), c.config.clone(), backend.name.clone(), notify));
    }
    // Unchecked servers still count in "N active servers left".
    let peers = shared
        .plan
        .backends
        .iter()
        .flat_map(|b| b.servers.iter().map(|s| (b.name.clone(), s.clone())))
        .filter(|(_, s)| !shared.plan.checks.iter().any(|c| Arc::ptr_eq(&c.server, s)))
        .collect();
    Some(check::Checker::spawn_with_peers(targets, peers))
}

/// Binds and starts at once (tests and embedders).
pub fn start(config: &Config) -> Result<Running, StartError> {
    prepare(config)?.launch()
}

/// How often a stopping supervisor looks whether its threads are done.
const STOP_POLL: Duration = Duration::from_millis(10);

/// Waits for HAProxy's control signals and acts on them until the threads end.
/// `hard_stop_after` bounds how long a soft stop may wait for sessions.
pub fn supervise(running: Running, hard_stop_after: Option<Duration>) -> std::io::Result<()> {
    sys::install_signal_handlers()?;
    let mut soft_since: Option<std::time::Instant> = None;
    loop {
        let signals = sys::take_signals();
        if signals & sys::SIG_HARD_STOP != 0 {
            running.stop(true);
            // HAProxy ends killed by the signal; so does hapx once its threads are done.
            let sig = sys::last_hard_signal();
            let _ = running.join();
            sys::die_of(sig);
        }
        if signals & sys::SIG_SOFT_STOP != 0 {
            running.stop(false);
            soft_since.get_or_insert_with(std::time::Instant::now);
        }
        if let (Some(since), Some(limit)) = (soft_since, hard_stop_after) {
            if since.elapsed() >= limit {
                running.stop(true);
                return running.join();
            }
        }
        if signals & sys::SIG_PAUSE != 0 {
            running.shared.paused.store(true, Ordering::Release);
            running.shared.wake_all();
        }
        if signals & sys::SIG_RESUME != 0 {
            running.shared.paused.store(false, Ordering::Release);
            running.shared.wake_all();
        }
        let stopping =
            running.shared.soft_stop.load(Ordering::Acquire) || running.shared.hard_stop.load(Ordering::Acquire);
        if stopping && running.threads.iter().all(|t| t.is_finished()) {
            return running.join();
        }
        if running.threads.iter().any(|t| t.is_finished()) && !stopping {
            running.stop(true);
            return running.join();
        }
        // Sleeps until a signal or an ended thread; a soft stop with `hard-stop-after` also
        // wakes when that time is up.
        let mut left = match (soft_since, hard_stop_after) {
            (Some(since), Some(limit)) => Some(limit.saturating_sub(since.elapsed())),
            _ => None,
        };
        if stopping {
            // A thread wakes us just before it has finished returning: look again shortly.
            left = Some(left.map_or(STOP_POLL, |l| l.min(STOP_POLL)));
        }
        sys::wait_for_wake(left);
    }
}
