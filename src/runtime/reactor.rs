//! One event loop per thread: a mio Poll, the listeners of this thread, a slab of sessions
//! addressed by token, and their deadlines. Tokens are laid out by kind: 0 is the waker,
//! 1.. are listeners, SESSION_BASE.. are sessions (two tokens each: client, server).
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::balance::{self, Balancer, LbKind, Pick, PickCtx};
use super::conn::{Conn, Listener};
use super::error::StartError;
use super::plan::BindAddr;
use super::plan::{Plan, SpliceOpts};
use super::session::{Cause, Farm, Next, Session, Stage, State, Term};
use super::splice::PipePool;
use super::state::ServerState;
use super::stream::{BufPool, Ends, Flow, Pools, PumpError, Side};
use super::sys;
use super::timer::{TimerId, Wheel};

const WAKER: Token = Token(0);
const SESSION_BASE: usize = 1 << 24;
/// Bytes one direction of one session may move per wake-up, so that a bulk transfer cannot
/// starve thousands of quiet sessions.
const BUDGET: usize = 256 * 1024;
/// How often a stopping thread looks at its lingering listeners.
const LINGER_TICK: Duration = Duration::from_millis(20);

/// State shared by every thread.
pub struct Shared {
    pub plan: Plan,
    /// Sessions open in the whole process, and per frontend.
    pub actconn: AtomicU32,
    pub feconn: Vec<AtomicU32>,
    /// Sessions per `bind` address, in plan order.
    pub bindconn: Vec<AtomicU32>,
    /// Stop accepting and exit once sessions are done (SIGUSR1), or at once (SIGTERM).
    pub soft_stop: AtomicBool,
    pub hard_stop: AtomicBool,
    /// Listeners paused (SIGTTOU) until resumed (SIGTTIN).
    pub paused: AtomicBool,
    /// Requests to close the sessions of a server (`on-marked-down shutdown-sessions`) or of
    /// a backend's backups (`on-marked-up shutdown-backup-sessions`); `kill_epoch` counts them.
    pub kills: std::sync::Mutex<Vec<KillRequest>>,
    pub kill_epoch: std::sync::atomic::AtomicU64,
    /// Every thread's waker, to have them act on a kill request, a freed server slot or a
    /// stop request at once.
    pub wakers: std::sync::OnceLock<Vec<Arc<Waker>>>,
    /// Per thread: the sessions it holds, and those handed to it not yet started. A thread
    /// that accepts gives the connection to the least loaded thread, as HAProxy's listeners
    /// do, so that a few heavy flows do not share one thread while others idle (the
    /// kernel's SO_REUSEPORT hash does not look at load).
    pub loads: Vec<AtomicU32>,
    /// Per thread: connections other threads accepted for it.
    pub inboxes: Vec<std::sync::Mutex<Vec<Accepted>>>,
    /// Some thread stopped accepting at a maxconn limit: the next close wakes them all.
    pub limited: AtomicBool,
    /// The health checker, told about real traffic errors (`observe layer4`).
    pub checker: std::sync::OnceLock<super::check::CheckerHandle>,
}

#[derive(Clone, Debug)]
pub struct KillRequest {
    pub epoch: u64,
    pub backend: usize,
    /// The server whose sessions end, or all backups of the backend.
    pub server: Option<String>,
}

impl Shared {
    /// Asks every thread to close the sessions of `server` (or of every backup server).
    pub fn request_kill(&self, backend: usize, server: &str, backups: bool) {
        let epoch = self.kill_epoch.fetch_add(1, Ordering::AcqRel) + 1;
        if let Ok(mut k) = self.kills.lock() {
            k.push(KillRequest { epoch, backend, server: (!backups).then(|| server.to_string()) });
        }
        self.wake_all();
    }

    /// Wakes every event loop thread.
    pub fn wake_all(&self) {
        if let Some(w) = self.wakers.get() {
            w.iter().for_each(|w| {
                let _ = w.wake();
            });
        }
    }

    /// The thread with the fewest sessions, `me` on a tie.
    fn least_loaded(&self, me: usize) -> usize {
        let load = |i: usize| self.loads.get(i).map_or(u32::MAX, |l| l.load(Ordering::Relaxed));
        let mut best = (load(me), me);
        for i in 0..self.loads.len() {
            if load(i) < best.0 {
                best = (load(i), i);
            }
        }
        best.1
    }
}

/// A connection accepted and counted (actconn, feconn, bindconn, the target's load), on its
/// way to the thread that will serve it.
pub struct Accepted {
    conn: Conn,
    addr: SocketAddr,
    frontend: usize,
    bind: usize,
}

/// What a finished session reports, for logs and stats.
#[derive(Clone, Debug)]
pub struct SessionEnd {
    pub client: SocketAddr,
    pub accept_time: SystemTime,
    pub frontend: usize,
    pub backend: Option<usize>,
    pub server: Option<Arc<ServerState>>,
    /// Time waiting in queue, to connect, in all (ms; -1 when the step was not reached).
    pub tw_ms: i64,
    pub tc_ms: i64,
    pub tt_ms: i64,
    /// Bytes from server to client, and from client to server.
    pub bytes_to_client: u64,
    pub bytes_from_client: u64,
    /// HAProxy's two-letter termination state.
    pub term: [u8; 2],
    pub retries: u32,
    /// The last retry went to another server (`option redispatch`).
    pub redispatched: bool,
    /// The address the client connected to.
    pub local: Option<SocketAddr>,
    pub actconn: u32,
    pub feconn: u32,
    pub beconn: u32,
    pub srv_conn: u32,
    pub backend_queue: u32,
}

/// A listening socket of this thread.
struct ListenerSlot {
    socket: Listener,
    frontend: usize,
    /// Index of its `bind` address among all of them (for the bind's `maxconn`).
    bind: usize,
    maxconn: u32,
    backlog: i32,
    registered: bool,
}

pub struct Worker {
    shared: Arc<Shared>,
    /// This thread's position among the event loops.
    id: usize,
    poll: Poll,
    waker: Arc<Waker>,
    listeners: Vec<ListenerSlot>,
    sessions: Vec<Option<Session>>,
    free: Vec<usize>,
    next_gen: u64,
    /// Session deadlines, keyed by (slot, generation).
    timers: Wheel<(usize, u64)>,
    fired: Vec<(TimerId, (usize, u64))>,
    pool: BufPool,
    pipes: PipePool,
    /// Sessions with work left after their budget ran out.
    again: Vec<usize>,
    /// Per backend: this thread's balancer (no lock shared by threads) and its queue of
    /// sessions waiting for a server slot.
    balancers: Vec<Box<dyn Balancer>>,
    queues: Vec<VecDeque<usize>>,
    accepting: bool,
    /// The last kill request this thread acted on.
    kill_seen: u64,
    /// Accepting stopped at a maxconn limit (connections wait in the kernel's backlog).
    at_limit: bool,
    listener_stop: super::conn::ListenerStop,
}

fn token(slot: usize, side: Side) -> Token {
    Token(SESSION_BASE + slot * 2 + usize::from(side == Side::Server))
}

/// What a pick may read about a session.
fn pick_ctx(s: &Session, avoid: Option<usize>) -> PickCtx {
    PickCtx {
        src: Some(s.client_addr.ip()),
        src_port: Some(s.client_addr.port()),
        dst: s.local.map(|a| a.ip()),
        dst_port: s.local.map(|a| a.port()),
        avoid,
    }
}

fn ms_since(t: Option<Instant>, from: Instant) -> i64 {
    t.map_or(-1, |t| t.saturating_duration_since(from).as_millis() as i64)
}

/// What one readiness event said about a socket.
#[derive(Clone, Copy, Debug)]
struct Event {
    readable: bool,
    writable: bool,
    read_closed: bool,
    error: bool,
}

impl Event {
    fn of(e: &mio::event::Event) -> Event {
        Event {
            readable: e.is_readable(),
            writable: e.is_writable(),
            read_closed: e.is_read_closed(),
            error: e.is_error(),
        }
    }
}

impl Worker {
    /// Binds this thread's listeners (SO_REUSEPORT lets every thread bind the same address).
    pub fn new(shared: Arc<Shared>, id: usize) -> Result<Worker, StartError> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut listeners = Vec::new();
        let mut bind = 0;
        for (fi, fe) in shared.plan.frontends.iter().enumerate() {
            for b in &fe.binds {
                let bound = match &b.addr {
                    BindAddr::Inet(addr) => {
                        sys::tcp_listener(addr, b.opts.clone()).map(|l| Listener::Tcp(TcpListener::from_std(l)))
                    }
                    BindAddr::Unix(path) => Listener::bind_unix(path),
                    BindAddr::Abstract(name) => Listener::bind_abstract(name),
                };
                let mut socket = bound.map_err(|source| StartError::Bind {
                    frontend: fe.name.clone(),
                    addr: b.addr.to_string(),
                    source,
                })?;
                let tok = Token(listeners.len() + 1);
                poll.registry().register(&mut socket, tok, Interest::READABLE)?;
                listeners.push(ListenerSlot {
                    socket,
                    frontend: fi,
                    bind,
                    maxconn: b.maxconn,
                    backlog: b.opts.backlog,
                    registered: true,
                });
                bind += 1;
            }
        }
        let balancers = shared
            .plan
            .backends
            .iter()
            .map(|b| {
                balance::build(&b.balance)
                    .map_err(|e| StartError::Backend { backend: b.name.clone(), what: e.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let queues = shared.plan.backends.iter().map(|_| VecDeque::new()).collect();
        let pool = BufPool::new(shared.plan.bufsize, 256);
        let pipes = PipePool::new(shared.plan.maxpipes_per_thread());
        Ok(Worker {
            shared,
            id,
            poll,
            waker,
            listeners,
            sessions: Vec::new(),
            free: Vec::new(),
            next_gen: 1,
            timers: Wheel::new(Instant::now()),
            fired: Vec::new(),
            pool,
            pipes,
            again: Vec::new(),
            balancers,
            queues,
            accepting: true,
            kill_seen: 0,
            at_limit: false,
            listener_stop: Default::default(),
        })
    }

    /// A handle that wakes this thread from another.
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// The addresses this thread listens on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|l| l.socket.local_inet()).collect()
    }

    fn live_sessions(&self) -> usize {
        self.sessions.len() - self.free.len()
    }

    /// Runs until stopped. Sleeps until the next deadline or event: stop requests, pauses,
    /// kills and freed slots on other threads all come through the waker.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            if self.shared.hard_stop.load(Ordering::Acquire) {
                return Ok(());
            }
            let stopping = self.shared.soft_stop.load(Ordering::Acquire);
            if stopping && !self.listeners.is_empty() {
                // A soft stop resets nothing: the listeners take no new connection, what the
                // kernel queued is served, then they close (conn::ListenerStop).
                let (listeners, threads) = (self.listeners.iter().map(|l| &l.socket), self.shared.plan.nbthread);
                let close = self.listener_stop.step(listeners, threads);
                self.accept_all();
                if close {
                    for mut l in self.listeners.drain(..) {
                        let _ = self.poll.registry().deregister(&mut l.socket);
                    }
                }
            }
            let paused = self.shared.paused.load(Ordering::Acquire);
            self.set_accepting(!paused)?;
            let load = self.shared.loads.get(self.id).map_or(0, |l| l.load(Ordering::Acquire));
            if stopping && self.listeners.is_empty() && self.live_sessions() == 0 && load == 0 {
                return Ok(());
            }
            let mut timeout = if self.again.is_empty() {
                self.timers.next_wake().map(|at| at.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if stopping && !self.listeners.is_empty() {
                // Stopping listeners linger a moment before they close: come back for them.
                timeout = Some(timeout.map_or(LINGER_TICK, |t| t.min(LINGER_TICK)));
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        // A thread stopped at a limit retries accepting at every turn.
                        self.take_inbox();
                        self.apply_kills();
                        self.serve_queues();
                    }
                    Token(t) if t >= SESSION_BASE => {
                        let side = if (t - SESSION_BASE) % 2 == 1 { Side::Server } else { Side::Client };
                        self.on_event((t - SESSION_BASE) / 2, side, Event::of(event));
                    }
                    Token(t) => self.accept(t - 1),
                }
            }
            let now = Instant::now();
            for slot in std::mem::take(&mut self.again) {
                self.pump(slot, now);
            }
            if std::mem::take(&mut self.at_limit) {
                self.accept_all();
            }
            self.expire_timers(Instant::now());
        }
    }

    fn set_accepting(&mut self, on: bool) -> io::Result<()> {
        if on == self.accepting {
            return Ok(());
        }
        self.accepting = on;
        // As HAProxy: a paused listener stops listening (connections are refused, not left
        // waiting), and listens again when resumed.
        for (i, l) in self.listeners.iter_mut().enumerate() {
            if on && !l.registered {
                let _ = sys::resume_listener(&l.socket, l.backlog);
                self.poll.registry().register(&mut l.socket, Token(i + 1), Interest::READABLE)?;
                l.registered = true;
            } else if !on && l.registered {
                self.poll.registry().deregister(&mut l.socket)?;
                let _ = sys::pause_listener(&l.socket);
                l.registered = false;
            }
        }
        if on {
            self.accept_all();
        }
        Ok(())
    }

    /// Whether one more session fits under the process and frontend limits.
    fn has_room(&self, frontend: usize, bind: usize, bind_max: u32) -> bool {
        let plan = &self.shared.plan;
        let bind_ok =
            bind_max == 0 || self.shared.bindconn.get(bind).is_some_and(|c| c.load(Ordering::Acquire) < bind_max);
        let global_ok = plan.maxconn == 0 || self.shared.actconn.load(Ordering::Acquire) < plan.maxconn;
        let fe_max = plan.frontends.get(frontend).map_or(0, |f| f.maxconn);
        let fe_ok = fe_max == 0 || self.shared.feconn.get(frontend).is_some_and(|c| c.load(Ordering::Acquire) < fe_max);
        global_ok && fe_ok && bind_ok
    }

    fn accept_all(&mut self) {
        for i in 0..self.listeners.len() {
            self.accept(i);
        }
    }

    fn accept(&mut self, index: usize) {
        if !self.accepting {
            return;
        }
        loop {
            let Some(l) = self.listeners.get(index) else { return };
            let (frontend, bind) = (l.frontend, l.bind);
            // At the limit, connections wait in the kernel's backlog until a slot frees
            // (on any thread: a close wakes the others while one waits).
            if !self.has_room(frontend, bind, l.maxconn) {
                self.at_limit = true;
                self.shared.limited.store(true, Ordering::Release);
                return;
            }
            match l.socket.accept() {
                Ok((conn, addr)) => {
                    let addr = addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                    self.dispatch(Accepted { conn, addr, frontend, bind });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let name = self.shared.plan.frontends.get(frontend).map_or("?", |f| f.name.as_str());
                    log::warn!("accept on frontend {name}: {e}");
                    return;
                }
            }
        }
    }

    /// Counts an accepted connection against the limits at once (so no other thread can
    /// exceed them meanwhile), then serves it here or hands it to a less loaded thread.
    fn dispatch(&mut self, a: Accepted) {
        self.count_session(a.frontend, a.bind, true);
        // A stopping process keeps what it accepts: the other threads may be leaving.
        let target =
            if self.shared.soft_stop.load(Ordering::Relaxed) { self.id } else { self.shared.least_loaded(self.id) };
        if let Some(load) = self.shared.loads.get(target) {
            load.fetch_add(1, Ordering::AcqRel);
        }
        if target == self.id {
            return self.start_session(a);
        }
        let queued = match self.shared.inboxes.get(target).map(|q| q.lock()) {
            Some(Ok(mut q)) => {
                q.push(a);
                None
            }
            _ => Some(a),
        };
        match queued {
            None => {
                if let Some(w) = self.shared.wakers.get().and_then(|w| w.get(target)) {
                    let _ = w.wake();
                }
            }
            // The target's inbox is unusable (a thread panicked): serve it here.
            Some(a) => {
                self.move_load(target, self.id);
                self.start_session(a)
            }
        }
    }

    fn move_load(&self, from: usize, to: usize) {
        if let Some(l) = self.shared.loads.get(from) {
            l.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(l) = self.shared.loads.get(to) {
            l.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Starts the sessions other threads handed to this one.
    fn take_inbox(&mut self) {
        let handed = match self.shared.inboxes.get(self.id).map(|q| q.lock()) {
            Some(Ok(mut q)) => std::mem::take(&mut *q),
            _ => return,
        };
        for a in handed {
            self.start_session(a);
        }
    }

    /// Adds (or removes) one session to the process, frontend and bind counts.
    fn count_session(&self, frontend: usize, bind: usize, add: bool) {
        let apply = |c: &AtomicU32| {
            if add {
                c.fetch_add(1, Ordering::AcqRel)
            } else {
                c.fetch_sub(1, Ordering::AcqRel)
            }
        };
        apply(&self.shared.actconn);
        if let Some(c) = self.shared.feconn.get(frontend) {
            apply(c);
        }
        if let Some(c) = self.shared.bindconn.get(bind) {
            apply(c);
        }
    }

    fn alloc_slot(&mut self) -> usize {
        match self.free.pop() {
            Some(s) => s,
            None => {
                self.sessions.push(None);
                self.sessions.len() - 1
            }
        }
    }

    fn session(&mut self, slot: usize) -> Option<&mut Session> {
        self.sessions.get_mut(slot).and_then(Option::as_mut)
    }

    /// Serves an accepted connection on this thread (already counted, this thread's load
    /// included).
    fn start_session(&mut self, a: Accepted) {
        let Accepted { conn: mut client, addr, frontend, bind } = a;
        let slot = self.alloc_slot();
        if self
            .poll
            .registry()
            .register(&mut client, token(slot, Side::Client), Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            self.free.push(slot);
            self.count_session(frontend, bind, false);
            if let Some(l) = self.shared.loads.get(self.id) {
                l.fetch_sub(1, Ordering::AcqRel);
            }
            return;
        }
        client.set_nodelay();
        let fe = self.shared.plan.frontends.get(frontend);
        if fe.is_some_and(|f| f.client_keepalive) {
            let _ = sys::set_keepalive(&client);
        }
        let gen = self.next_gen;
        self.next_gen += 1;
        let now = Instant::now();
        let backend = fe.and_then(|f| f.backend);
        let log = fe.and_then(|f| f.log.as_ref());
        // The local address costs a syscall: fetched only for a log or a pick that uses it.
        let needs_local = log.is_some_and(|l| l.needs_local_addr())
            || backend.and_then(|b| self.balancers.get(b)).is_some_and(|b| b.needs_dst());
        let local = if needs_local { client.local_inet() } else { None };
        if let (Some(log), Some(fe)) = (log, fe) {
            log.session_started(addr, local, &fe.name);
        }
        let mut session = Session::new(gen, client, addr, frontend, bind, now);
        session.backend = backend;
        session.local = local;
        if let Some(s) = self.sessions.get_mut(slot) {
            *s = Some(session);
        }
        self.proceed(slot, Next::Pick);
    }

    /// Carries out what a transition asked for, until the session waits or ends. Bounded:
    /// each pass either moves to a later state or spends a retry.
    fn proceed(&mut self, slot: usize, mut next: Next) {
        for _ in 0..64 {
            next = match next {
                Next::Pick => self.pick(slot),
                Next::Connect => self.connect(slot),
                Next::Close(term) => return self.close(slot, term),
                Next::Wait => return self.arm(slot),
            };
        }
        log::error!("session {slot}: no progress after 64 transitions; closing it");
        self.close(slot, Term::new(Cause::Killed, Stage::Connect));
    }

    /// The backend's picture for a retry decision.
    fn farm(&self, backend: usize, srv: Option<&Arc<ServerState>>) -> Farm {
        let servers = self.shared.plan.backends.get(backend).map_or(&[][..], |b| b.servers.as_slice());
        Farm {
            server_running: srv.is_some_and(|s| s.eligible()),
            active: servers.iter().filter(|s| !s.backup && s.eligible()).count(),
            kind: self.balancers.get(backend).map_or(LbKind::RoundRobin, |b| b.kind()),
        }
    }

    /// REQ: asks this thread's balancer; assigns, queues or gives up.
    fn pick(&mut self, slot: usize) -> Next {
        let Some(s) = self.sessions.get(slot).and_then(Option::as_ref) else { return Next::Wait };
        let Some(bi) = s.backend else { return Next::Close(Term::new(Cause::ServerAbort, Stage::Connect)) };
        let Some(backend) = self.shared.plan.backends.get(bi) else { return Next::Wait };
        let ctx = pick_ctx(s, s.avoid);
        let Some(balancer) = self.balancers.get_mut(bi) else { return Next::Wait };
        let pick = balance::choose(balancer.as_mut(), &backend.servers, &ctx);
        let server = match pick {
            Pick::Server(i) => backend.servers.get(i).cloned(),
            _ => None,
        };
        if let Some(srv) = &server {
            srv.acquire();
        }
        let queue = self.shared.plan.settings.get(bi).and_then(|t| t.timeouts.queue);
        let now = Instant::now();
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return Next::Wait };
        let next = s.picked(pick, server, now, queue);
        if matches!(s.state, State::Queued { .. }) {
            if let Some(q) = self.queues.get_mut(bi) {
                q.push_back(slot);
                backend.queued.fetch_add(1, Ordering::AcqRel);
            }
        }
        next
    }

    /// ASS: opens a connection to the assigned server.
    fn connect(&mut self, slot: usize) -> Next {
        let now = Instant::now();
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return Next::Wait };
        let Some(server) = s.srv.as_deref() else { return Next::Pick };
        let settings = s.backend.and_then(|b| self.shared.plan.settings.get(b));
        let attempt = match (&server.unix, server.source) {
            (Some(path), _) => UnixStream::connect(path).map(Conn::Unix),
            (None, Some(from)) => sys::tcp_connect_from(&from, &server.addr).map(|s| Conn::Tcp(TcpStream::from_std(s))),
            (None, None) => TcpStream::connect(server.addr).map(Conn::Tcp),
        };
        let mut stream = match attempt {
            Ok(stream) => stream,
            // A synchronous failure: retried at once, without a turn-around.
            Err(_) => return self.connect_failed(slot, now, false),
        };
        if self
            .poll
            .registry()
            .register(&mut stream, token(slot, Side::Server), Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            return Next::Close(Term::new(Cause::Resource, Stage::Connect));
        }
        stream.set_nodelay();
        if settings.is_some_and(|b| b.server_keepalive) {
            let _ = sys::set_keepalive(&stream);
        }
        let timeout = settings.and_then(|b| b.timeouts.connect);
        s.connecting(stream, now, timeout)
    }

    /// CER: reports the error to the checker (`observe layer4`) and lets the session decide.
    fn connect_failed(&mut self, slot: usize, now: Instant, asynchronous: bool) -> Next {
        let shared = self.shared.clone();
        let Some(s) = self.sessions.get(slot).and_then(Option::as_ref) else { return Next::Wait };
        let Some(bi) = s.backend else { return Next::Close(Term::new(Cause::ServerAbort, Stage::Connect)) };
        if let (Some(checker), Some(srv)) = (shared.checker.get(), s.srv.as_ref()) {
            checker.report_connection_error(srv);
        }
        let farm = self.farm(bi, s.srv.as_ref());
        let Some(policy) = shared.plan.settings.get(bi).map(|b| b.retry) else { return Next::Wait };
        let Some(s) = self.session(slot) else { return Next::Wait };
        let had_server = s.srv.is_some();
        let next = s.connect_failed(now, &policy, &farm, asynchronous);
        if had_server && s.srv.is_none() {
            self.slot_freed(bi);
        }
        next
    }

    /// A readiness event on one of a session's sockets.
    fn on_event(&mut self, slot: usize, side: Side, ev: Event) {
        let now = Instant::now();
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return };
        match (side, &mut s.state) {
            (Side::Client, _) => s.client_ready.merge(ev.readable, ev.writable, ev.read_closed),
            (Side::Server, State::Connecting { server_ready, .. }) => {
                server_ready.merge(ev.readable, ev.writable, ev.read_closed);
                // Refused or reset: the kernel says so with an error (or a hang-up without
                // anything to read); otherwise writable means connected. No syscall asks.
                if ev.error || (ev.read_closed && !ev.readable && !ev.writable) {
                    let next = self.connect_failed(slot, now, true);
                    return self.proceed(slot, next);
                }
                if !ev.writable {
                    return;
                }
                let fe = self.shared.plan.frontends.get(s.frontend).map(|f| f.splice).unwrap_or_default();
                let be = s.backend.and_then(|b| self.shared.plan.settings.get(b)).map(|b| b.splice).unwrap_or_default();
                s.connected(now, SpliceOpts::modes(fe, be, self.shared.plan.splice));
                if let (Some(checker), Some(srv)) = (self.shared.checker.get(), s.srv.as_ref()) {
                    checker.report_connection_ok(srv);
                }
            }
            (Side::Server, State::Established(t)) => t.server_ready.merge(ev.readable, ev.writable, ev.read_closed),
            (Side::Server, _) => return,
        }
        let Some(s) = self.session(slot) else { return };
        match &s.state {
            State::Established(_) => self.pump(slot, now),
            // Before a server is connected, only a client error ends the session (as
            // HAProxy without `option abortonclose`, a client's FIN does not).
            _ if side == Side::Client && ev.error => {
                let stage = s.stage();
                self.close(slot, Term::new(Cause::ClientAbort, stage))
            }
            _ => {}
        }
    }

    /// EST: moves bytes both ways.
    fn pump(&mut self, slot: usize, now: Instant) {
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return };
        let State::Established(t) = &mut s.state else { return };
        let t = t.as_mut();
        let up = t.c2s.pump(
            Ends {
                src: &mut s.client,
                src_ready: &mut s.client_ready,
                dst: &mut t.server,
                dst_ready: &mut t.server_ready,
                sides: (Side::Client, Side::Server),
                other_done: t.s2c.is_done(),
            },
            Pools { bufs: &mut self.pool, pipes: &mut self.pipes },
            BUDGET,
            now,
        );
        let down = t.s2c.pump(
            Ends {
                src: &mut t.server,
                src_ready: &mut t.server_ready,
                dst: &mut s.client,
                dst_ready: &mut s.client_ready,
                sides: (Side::Server, Side::Client),
                other_done: t.c2s.is_done(),
            },
            Pools { bufs: &mut self.pool, pipes: &mut self.pipes },
            BUDGET,
            now,
        );
        match (up, down) {
            (Err(e), _) | (_, Err(e)) => self.abort(slot, e),
            (Ok(Flow::Done), Ok(Flow::Done)) => {
                let term = t.timed_out.map_or(Term::NORMAL, |c| Term::new(c, Stage::Data));
                self.close(slot, term)
            }
            (Ok(a), Ok(b)) => {
                if a == Flow::Budget || b == Flow::Budget {
                    self.again.push(slot);
                }
                self.arm(slot);
            }
        }
    }

    /// The inactivity deadlines of an established session's sides, from their last
    /// activity and HAProxy's timeouts: `tunnel` replaces `client` and `server`; `client-fin`
    /// applies once the client was sent a FIN, `server-fin` once the server was.
    fn side_deadlines(&self, s: &Session) -> (Option<Instant>, Option<Instant>) {
        let State::Established(t) = &s.state else { return (None, None) };
        let plan = &self.shared.plan;
        let fe = plan.frontends.get(s.frontend);
        let be = s.backend.and_then(|b| plan.settings.get(b)).map(|b| b.timeouts).unwrap_or_default();
        let client_fin = fe.and_then(|f| f.client_fin_timeout).filter(|_| t.s2c.dst_shut);
        let server_fin = be.server_fin.filter(|_| t.c2s.dst_shut);
        let client_t = client_fin.or(be.tunnel).or(fe.and_then(|f| f.client_timeout));
        let server_t = server_fin.or(be.tunnel).or(be.server);
        let base = t.connected_at;
        let client_last =
            [t.c2s.last_read, t.s2c.last_write, t.client_idle_from].into_iter().flatten().max().unwrap_or(base);
        let server_last =
            [t.s2c.last_read, t.c2s.last_write, t.server_idle_from].into_iter().flatten().max().unwrap_or(base);
        (client_t.map(|d| client_last + d), server_t.map(|d| server_last + d))
    }

    fn deadline(&self, s: &Session) -> Option<Instant> {
        match s.state {
            State::Established(_) => {
                let (c, v) = self.side_deadlines(s);
                [c, v].into_iter().flatten().min()
            }
            _ => s.state_deadline(),
        }
    }

    /// Arms the session's one timer for its deadline. While data flows the deadline only
    /// moves later: the timer stays where it is and is moved when it fires, so a read costs
    /// no timer work at all.
    fn arm(&mut self, slot: usize) {
        let Some(s) = self.sessions.get(slot).and_then(Option::as_ref) else { return };
        let deadline = self.deadline(s);
        let lazy = matches!(s.state, State::Established(_));
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return };
        let keep = match (s.timer_at, deadline) {
            (Some(armed), Some(d)) => armed == d || (lazy && armed < d),
            (None, None) => true,
            _ => false,
        };
        if !keep {
            self.timers.set(&mut s.timer, (slot, s.gen), deadline);
            s.timer_at = deadline;
        }
    }

    fn expire_timers(&mut self, now: Instant) {
        let mut fired = std::mem::take(&mut self.fired);
        self.timers.expire(now, &mut fired);
        for (id, (slot, gen)) in fired.drain(..) {
            let Some(s) = self.session(slot) else { continue };
            if s.gen != gen || s.timer != Some(id) {
                continue;
            }
            s.timer = None;
            s.timer_at = None;
            self.timer_fired(slot, now);
        }
        self.fired = fired;
    }

    fn timer_fired(&mut self, slot: usize, now: Instant) {
        let shared = self.shared.clone();
        let Some(s) = self.sessions.get(slot).and_then(Option::as_ref) else { return };
        if let State::Established(_) = s.state {
            let (client, server) = self.side_deadlines(s);
            if client.is_some_and(|c| c <= now) {
                self.side_timeout(slot, Side::Client, now);
            }
            if server.is_some_and(|c| c <= now) {
                self.side_timeout(slot, Side::Server, now);
            }
            return self.arm(slot);
        }
        let Some(bi) = s.backend else { return };
        let farm = self.farm(bi, s.srv.as_ref());
        let Some(policy) = shared.plan.settings.get(bi).map(|b| b.retry) else { return };
        let connecting = matches!(s.state, State::Connecting { .. });
        if connecting && s.state_deadline().is_some_and(|d| d <= now) {
            // A connect timeout is a failed attempt for `observe layer4` too.
            let next = self.connect_failed(slot, now, false);
            return self.proceed(slot, next);
        }
        let Some(s) = self.session(slot) else { return };
        let next = s.state_expired(now, &policy, &farm);
        self.proceed(slot, next);
    }

    /// A side's inactivity timeout: HAProxy stops reading that side and passes the close on
    /// (the other direction goes on); if that side was already closed, the session ends.
    fn side_timeout(&mut self, slot: usize, side: Side, now: Instant) {
        let Some(s) = self.session(slot) else { return };
        let State::Established(t) = &mut s.state else { return };
        let (pipe, cause) = match side {
            Side::Client => (&mut t.c2s, Cause::ClientTimeout),
            Side::Server => (&mut t.s2c, Cause::ServerTimeout),
        };
        t.timed_out.get_or_insert(cause);
        if pipe.src_eof {
            return self.close(slot, Term::new(cause, Stage::Data));
        }
        pipe.src_eof = true;
        // The timeout restarts that side's clock: a second one ends the session.
        match side {
            Side::Client => t.client_idle_from = Some(now),
            Side::Server => t.server_idle_from = Some(now),
        }
        self.pump(slot, now);
    }

    fn abort(&mut self, slot: usize, e: PumpError) {
        log::debug!("session {slot}: {:?} side error: {}", e.side, e.error);
        let cause = match e.side {
            Side::Client => Cause::ClientAbort,
            Side::Server => Cause::ServerAbort,
        };
        self.close(slot, Term::new(cause, Stage::Data));
    }

    /// A server slot of `backend` freed: serve this thread's queue, and wake the other
    /// threads when sessions wait in theirs.
    fn slot_freed(&mut self, backend: usize) {
        let waiting = self.shared.plan.backends.get(backend).map_or(0, |b| b.queued.load(Ordering::Acquire));
        if waiting == 0 {
            return;
        }
        let local = self.queues.get(backend).map_or(0, VecDeque::len) as u32;
        self.serve_queue(backend);
        if waiting > local {
            self.shared.wake_all();
        }
    }

    /// Ends a session: sockets closed, counters released, the end reported, queues served.
    fn close(&mut self, slot: usize, term: Term) {
        let Some(mut s) = self.sessions.get_mut(slot).and_then(Option::take) else { return };
        self.free.push(slot);
        log::debug!("session {} from {} ends: {}", slot, s.client_addr, String::from_utf8_lossy(&term.letters()));
        let now = Instant::now();
        if let Some(id) = s.timer.take() {
            self.timers.cancel(id);
        }
        if let State::Established(t) = &mut s.state {
            t.c2s.release(Pools { bufs: &mut self.pool, pipes: &mut self.pipes });
            t.s2c.release(Pools { bufs: &mut self.pool, pipes: &mut self.pipes });
        }
        // A session still queued counts the queue it leaves (HAProxy's %bq), itself included.
        let mut backend_queue = 0;
        if let (State::Queued { .. }, Some(bi)) = (&s.state, s.backend) {
            if let Some(q) = self.queues.get_mut(bi) {
                backend_queue = q.len() as u32;
                q.retain(|&x| x != slot);
            }
            if let Some(b) = self.shared.plan.backends.get(bi) {
                b.queued.fetch_sub(1, Ordering::AcqRel);
            }
        }
        if let Some(l) = self.shared.loads.get(self.id) {
            l.fetch_sub(1, Ordering::AcqRel);
        }
        let actconn = self.shared.actconn.fetch_sub(1, Ordering::AcqRel);
        let feconn = self.shared.feconn.get(s.frontend).map_or(0, |c| c.fetch_sub(1, Ordering::AcqRel));
        if let Some(c) = self.shared.bindconn.get(s.bind) {
            c.fetch_sub(1, Ordering::AcqRel);
        }
        // HAProxy logs the server's sessions once this one has left it.
        let released = s.release_server();
        let plan = &self.shared.plan;
        let fe = plan.frontends.get(s.frontend);
        if let Some((fe, log)) = fe.and_then(|f| f.log.as_ref().map(|l| (f, l))) {
            let srv_conn = released.as_ref().map_or(0, |srv| srv.cur.load(Ordering::Acquire));
            let beconn = s
                .backend
                .and_then(|b| plan.backends.get(b))
                .map_or(0, |b| b.servers.iter().map(|x| x.cur.load(Ordering::Relaxed)).sum::<u32>());
            let (bytes_to_client, bytes_from_client) = s.bytes();
            let end = SessionEnd {
                client: s.client_addr,
                accept_time: s.accept_time,
                frontend: s.frontend,
                backend: s.backend,
                server: s.target.clone(),
                tw_ms: s.queued_at.map_or(0, |q| ms_since(s.connect_start.or(Some(now)), q)),
                tc_ms: s.connect_start.map_or(-1, |c| ms_since(s.connected_at(), c)),
                tt_ms: ms_since(Some(now), s.accepted),
                bytes_to_client,
                bytes_from_client,
                term: term.letters(),
                retries: s.retries,
                redispatched: s.redispatched,
                local: s.local,
                actconn,
                feconn,
                beconn,
                srv_conn,
                backend_queue,
            };
            let backend = end.backend.and_then(|b| plan.backends.get(b)).map_or("", |b| b.name.as_str());
            log.session_ended(&end, &fe.name, backend);
        }
        let backend = s.backend;
        // Closing the sockets takes them out of the poller too: no epoll_ctl needed.
        drop(s);
        if let (Some(bi), Some(_)) = (backend, released) {
            self.slot_freed(bi);
        }
        // A slot freed: resume accepting if a limit had stopped this thread or another.
        if std::mem::take(&mut self.at_limit) {
            self.accept_all();
        }
        // Read first: a swap on every close would bounce the line between threads.
        if self.shared.limited.load(Ordering::Relaxed) && self.shared.limited.swap(false, Ordering::AcqRel) {
            self.shared.wake_all();
        }
    }

    /// Closes the sessions named by kill requests this thread has not seen yet.
    fn apply_kills(&mut self) {
        let epoch = self.shared.kill_epoch.load(Ordering::Acquire);
        if epoch == self.kill_seen {
            return;
        }
        let requests: Vec<KillRequest> = match self.shared.kills.lock() {
            Ok(k) => k.iter().filter(|r| r.epoch > self.kill_seen).cloned().collect(),
            Err(_) => return,
        };
        self.kill_seen = epoch;
        for r in requests {
            let victims: Vec<(usize, Stage)> = self
                .sessions
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let s = s.as_ref()?;
                    let srv = s.srv.as_ref()?;
                    let hit = s.backend == Some(r.backend)
                        && match &r.server {
                            Some(name) => &srv.name == name,
                            None => srv.backup,
                        };
                    hit.then_some((i, s.stage()))
                })
                .collect();
            let cause = if r.server.is_some() { Cause::Down } else { Cause::Up };
            for (slot, stage) in victims {
                self.close(slot, Term::new(cause, stage));
            }
        }
    }

    /// Gives queued sessions of this thread the server slots that are free now.
    fn serve_queues(&mut self) {
        for bi in 0..self.queues.len() {
            self.serve_queue(bi);
        }
    }

    /// Pops queued sessions while the balancer, the one judge of who may serve, names a
    /// server; stops at the first "full" or "none".
    fn serve_queue(&mut self, bi: usize) {
        let shared = self.shared.clone();
        let Some(backend) = shared.plan.backends.get(bi) else { return };
        while let Some(&slot) = self.queues.get(bi).and_then(VecDeque::front) {
            let Some(s) = self.sessions.get(slot).and_then(Option::as_ref) else {
                if let Some(q) = self.queues.get_mut(bi) {
                    q.pop_front();
                }
                continue;
            };
            let ctx = pick_ctx(s, None);
            let Some(balancer) = self.balancers.get_mut(bi) else { return };
            let Pick::Server(i) = balance::choose(balancer.as_mut(), &backend.servers, &ctx) else { return };
            let Some(srv) = backend.servers.get(i).cloned() else { return };
            srv.acquire();
            if let Some(q) = self.queues.get_mut(bi) {
                q.pop_front();
            }
            backend.queued.fetch_sub(1, Ordering::AcqRel);
            let Some(s) = self.session(slot) else { continue };
            let next = s.dequeued(srv);
            self.proceed(slot, next);
        }
    }
}
