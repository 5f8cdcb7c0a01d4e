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

use super::balance::PickCtx;
use super::conn::{Conn, Listener};
use super::plan::BindAddr;
use super::plan::Plan;
use super::state::ServerState;
use super::stream::{BufPool, Flow, Pipe, PumpError, Side};
use super::sys;
use super::timer::{Entry, Wheel};

const WAKER: Token = Token(0);
const SESSION_BASE: usize = 1 << 24;
/// Bytes one direction of one session may move per wake-up, so that a bulk transfer cannot
/// starve thousands of quiet sessions.
const BUDGET: usize = 256 * 1024;
/// The longest sleep, so that stop requests are seen even without traffic.
const MAX_SLEEP: Duration = Duration::from_millis(100);

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
    /// Every thread's waker, to have them act on a kill request at once.
    pub wakers: std::sync::Mutex<Vec<Arc<Waker>>>,
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
        if let Ok(w) = self.wakers.lock() {
            w.iter().for_each(|w| {
                let _ = w.wake();
            });
        }
    }
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for a server slot in the backend queue.
    Queued,
    Connecting,
    Established,
}

struct Session {
    gen: u64,
    client: Conn,
    /// The client's address (UNIX clients have none: logged as 0.0.0.0:0).
    client_addr: SocketAddr,
    server: Option<Conn>,
    frontend: usize,
    bind: usize,
    backend: Option<usize>,
    srv: Option<Arc<ServerState>>,
    phase: Phase,
    c2s: Pipe,
    s2c: Pipe,
    accepted: Instant,
    accept_time: SystemTime,
    queued_at: Option<Instant>,
    connect_start: Option<Instant>,
    connected_at: Option<Instant>,
    retries: u32,
    redispatched: bool,
    /// The earliest of the side deadlines (or the connect/queue deadline).
    deadline: Option<Instant>,
    client_deadline: Option<Instant>,
    server_deadline: Option<Instant>,
    /// The first side that timed out, for the termination state.
    timed_out: Option<[u8; 2]>,
    /// When a side last timed out (its inactivity clock restarts there).
    client_idle_from: Option<Instant>,
    server_idle_from: Option<Instant>,
    /// When the heap holds an entry for this session (the earliest one).
    timer_at: Option<Instant>,
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
    poll: Poll,
    waker: Arc<Waker>,
    listeners: Vec<ListenerSlot>,
    sessions: Vec<Option<Session>>,
    free: Vec<usize>,
    next_gen: u64,
    /// Session deadlines, keyed by (slot, generation).
    timers: Wheel<(usize, u64)>,
    fired: Vec<Entry<(usize, u64)>>,
    pool: BufPool,
    /// Sessions with work left after their budget ran out.
    again: Vec<usize>,
    /// Per backend, sessions of this thread waiting for a server.
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

fn ms_since(t: Option<Instant>, from: Instant) -> i64 {
    t.map_or(-1, |t| t.saturating_duration_since(from).as_millis() as i64)
}

impl Worker {
    /// Binds this thread's listeners (SO_REUSEPORT lets every thread bind the same address).
    pub fn new(shared: Arc<Shared>) -> io::Result<Worker> {
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
                let mut socket = bound.map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("Starting frontend {}: cannot bind socket [{}]: {e}", fe.name, b.addr),
                    )
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
        let queues = shared.plan.backends.iter().map(|_| VecDeque::new()).collect();
        let pool = BufPool::new(shared.plan.bufsize, 256);
        Ok(Worker {
            shared,
            poll,
            waker,
            listeners,
            sessions: Vec::new(),
            free: Vec::new(),
            next_gen: 1,
            timers: Wheel::new(Instant::now()),
            fired: Vec::new(),
            pool,
            again: Vec::new(),
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

    /// Runs until stopped.
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
            if stopping && self.listeners.is_empty() && self.live_sessions() == 0 {
                return Ok(());
            }
            let now = Instant::now();
            let timeout = if self.again.is_empty() { self.timers.next_within(now, MAX_SLEEP) } else { Duration::ZERO };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        self.apply_kills();
                        self.drain_queues();
                    }
                    Token(t) if t >= SESSION_BASE => self.drive((t - SESSION_BASE) / 2),
                    Token(t) => self.accept(t - 1),
                }
            }
            for slot in std::mem::take(&mut self.again) {
                self.drive(slot);
            }
            // A slot freed on another thread wakes nobody here: retry at each turn.
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
            // At the limit, connections wait in the kernel's backlog until a slot frees.
            if !self.has_room(frontend, bind, l.maxconn) {
                self.at_limit = true;
                return;
            }
            match l.socket.accept() {
                Ok((stream, addr)) => {
                    let addr = addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                    self.start_session(stream, addr, frontend, bind)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("accept on frontend {}: {e}", frontend);
                    return;
                }
            }
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

    fn start_session(&mut self, mut client: Conn, addr: SocketAddr, frontend: usize, bind: usize) {
        let slot = self.alloc_slot();
        if self
            .poll
            .registry()
            .register(&mut client, token(slot, Side::Client), Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            self.free.push(slot);
            return;
        }
        client.set_nodelay();
        if self.shared.plan.frontends.get(frontend).is_some_and(|f| f.client_keepalive) {
            let _ = sys::set_keepalive(&client);
        }
        self.shared.actconn.fetch_add(1, Ordering::AcqRel);
        if let Some(c) = self.shared.feconn.get(frontend) {
            c.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(c) = self.shared.bindconn.get(bind) {
            c.fetch_add(1, Ordering::AcqRel);
        }
        let gen = self.next_gen;
        self.next_gen += 1;
        let now = Instant::now();
        let fe = self.shared.plan.frontends.get(frontend);
        let backend = fe.and_then(|f| f.backend);
        if let Some((log, fe)) = fe.and_then(|f| f.log.as_ref().map(|l| (l, f))) {
            log.session_started(addr, client.local_inet(), &fe.name);
        }
        let session = Session {
            gen,
            client,
            client_addr: addr,
            server: None,
            frontend,
            bind,
            backend,
            srv: None,
            phase: Phase::Queued,
            c2s: Pipe::default(),
            s2c: Pipe::default(),
            accepted: now,
            accept_time: SystemTime::now(),
            queued_at: None,
            connect_start: None,
            connected_at: None,
            retries: 0,
            redispatched: false,
            deadline: None,
            client_deadline: None,
            server_deadline: None,
            timed_out: None,
            client_idle_from: None,
            server_idle_from: None,
            timer_at: None,
        };
        if let Some(s) = self.sessions.get_mut(slot) {
            *s = Some(session);
        }
        self.assign(slot, now);
    }

    /// Picks a server and connects, or queues, or gives up with HAProxy's codes.
    fn assign(&mut self, slot: usize, now: Instant) {
        let Some(s) = self.sessions.get(slot).and_then(Option::as_ref) else { return };
        let Some(bi) = s.backend else {
            return self.close(slot, *b"SC");
        };
        let Some(backend) = self.shared.plan.backends.get(bi).cloned() else { return };
        let ctx = PickCtx { src: Some(s.client_addr.ip()), src_port: Some(s.client_addr.port()), ..PickCtx::default() };
        let picked = backend.balancer.lock().ok().and_then(|mut b| b.pick(&backend.servers, &ctx));
        match picked.and_then(|i| backend.servers.get(i).cloned()) {
            Some(server) => {
                server.acquire();
                if let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) {
                    s.srv = Some(server);
                }
                self.connect(slot, now);
            }
            None if backend.servers.iter().any(|s| s.eligible()) => {
                // Every live server is full: wait for a slot, up to `timeout queue`.
                let timeout = self.shared.plan.settings.get(bi).and_then(|t| t.timeouts.queue);
                if let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) {
                    s.phase = Phase::Queued;
                    s.queued_at = Some(now);
                    s.deadline = timeout.map(|t| now + t);
                }
                if let Some(q) = self.queues.get_mut(bi) {
                    q.push_back(slot);
                }
                self.schedule(slot);
            }
            None => self.close(slot, *b"SC"),
        }
    }

    fn connect(&mut self, slot: usize, now: Instant) {
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return };
        let Some(server) = s.srv.clone() else { return };
        let settings = s.backend.and_then(|b| self.shared.plan.settings.get(b)).copied();
        let timeouts = settings.map(|b| b.timeouts).unwrap_or_default();
        let attempt = match (&server.unix, server.source) {
            (Some(path), _) => UnixStream::connect(path).map(Conn::Unix),
            (None, Some(from)) => sys::tcp_connect_from(&from, &server.addr).map(|s| Conn::Tcp(TcpStream::from_std(s))),
            (None, None) => TcpStream::connect(server.addr).map(Conn::Tcp),
        };
        match attempt {
            Ok(mut stream) => {
                if self
                    .poll
                    .registry()
                    .register(&mut stream, token(slot, Side::Server), Interest::READABLE | Interest::WRITABLE)
                    .is_err()
                {
                    return self.close(slot, *b"SC");
                }
                stream.set_nodelay();
                if settings.is_some_and(|b| b.server_keepalive) {
                    let _ = sys::set_keepalive(&stream);
                }
                s.server = Some(stream);
                s.phase = Phase::Connecting;
                s.connect_start.get_or_insert(now);
                s.deadline = timeouts.connect.map(|t| now + t);
                self.schedule(slot);
            }
            Err(_) => self.connect_failed(slot, now),
        }
    }

    /// A connection attempt failed: retry (on another server at the last try with
    /// `option redispatch`) or give up.
    fn connect_failed(&mut self, slot: usize, now: Instant) {
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return };
        if let (Some(checker), Some(srv)) = (self.shared.checker.get(), s.srv.as_ref()) {
            checker.report_connection_error(srv);
        }
        if let Some(mut stream) = s.server.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        let settings = s.backend.and_then(|b| self.shared.plan.settings.get(b)).copied();
        let Some(settings) = settings else { return self.close(slot, *b"SC") };
        if s.retries >= settings.retries {
            return self.close(slot, *b"SC");
        }
        s.retries += 1;
        if settings.redispatch && s.retries == settings.retries {
            s.redispatched = true;
            if let Some(old) = s.srv.take() {
                old.release();
            }
            return self.assign(slot, now);
        }
        self.connect(slot, now);
    }

    /// Runs a session after readiness: finishes a connect, then moves bytes both ways.
    fn drive(&mut self, slot: usize) {
        let now = Instant::now();
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return };
        if s.phase == Phase::Connecting {
            let Some(server) = s.server.as_ref() else { return };
            match server.take_error() {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => return self.connect_failed(slot, now),
            }
            match server.connected() {
                Ok(_) => {
                    s.phase = Phase::Established;
                    s.connected_at = Some(now);
                    if let (Some(checker), Some(srv)) = (self.shared.checker.get(), s.srv.as_ref()) {
                        checker.report_connection_ok(srv);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    // Still connecting; the client may already have sent bytes, kept in the kernel.
                    return;
                }
                Err(_) => return self.connect_failed(slot, now),
            }
        }
        if s.phase != Phase::Established {
            // Queued: a client close is noticed when the queue is served or times out.
            return;
        }
        let Some(server) = s.server.as_mut() else { return };
        let up = s.c2s.pump(&mut s.client, server, &mut self.pool, BUDGET, (Side::Client, Side::Server), now);
        let down = s.s2c.pump(server, &mut s.client, &mut self.pool, BUDGET, (Side::Server, Side::Client), now);
        match (up, down) {
            (Err(e), _) | (_, Err(e)) => self.abort(slot, e),
            (Ok(Flow::Done), Ok(Flow::Done)) => {
                let term = s.timed_out.unwrap_or(*b"--");
                self.close(slot, term)
            }
            (Ok(a), Ok(b)) => {
                if a == Flow::Budget || b == Flow::Budget {
                    self.again.push(slot);
                }
                self.refresh_deadline(slot, now);
            }
        }
    }

    /// The inactivity deadline of each side, from its last activity and HAProxy's timeouts:
    /// `tunnel` replaces `client` and `server` once connected; `client-fin` applies once the
    /// client was sent a FIN (the server closed first), `server-fin` once the server was.
    fn refresh_deadline(&mut self, slot: usize, now: Instant) {
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return };
        let plan = &self.shared.plan;
        let fe = plan.frontends.get(s.frontend);
        let be = s.backend.and_then(|b| plan.settings.get(b)).map(|b| b.timeouts).unwrap_or_default();
        let client_fin = fe.and_then(|f| f.client_fin_timeout).filter(|_| s.s2c.dst_shut);
        let server_fin = be.server_fin.filter(|_| s.c2s.dst_shut);
        let client_t = client_fin.or(be.tunnel).or(fe.and_then(|f| f.client_timeout));
        let server_t = server_fin.or(be.tunnel).or(be.server);
        let base = s.connected_at.unwrap_or(now);
        let client_last =
            [s.c2s.last_read, s.s2c.last_write, s.client_idle_from].into_iter().flatten().max().unwrap_or(base);
        let server_last =
            [s.s2c.last_read, s.c2s.last_write, s.server_idle_from].into_iter().flatten().max().unwrap_or(base);
        s.client_deadline = client_t.map(|t| client_last + t);
        s.server_deadline = server_t.map(|t| server_last + t);
        s.deadline = [s.client_deadline, s.server_deadline].into_iter().flatten().min();
        self.schedule(slot);
    }

    /// A side's inactivity timeout: HAProxy stops reading that side and passes the close on
    /// (the other direction goes on); if that side was already closed, the session ends.
    fn side_timeout(&mut self, slot: usize, side: Side, now: Instant) {
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return };
        let (pipe, term) = match side {
            Side::Client => (&mut s.c2s, *b"cD"),
            Side::Server => (&mut s.s2c, *b"sD"),
        };
        s.timed_out.get_or_insert(term);
        if pipe.src_eof {
            return self.close(slot, term);
        }
        pipe.src_eof = true;
        // The timeout restarts that side's clock: a second one ends the session.
        match side {
            Side::Client => s.client_idle_from = Some(now),
            Side::Server => s.server_idle_from = Some(now),
        }
        self.drive(slot);
    }

    fn refresh_after_timeout(&mut self, slot: usize, now: Instant) {
        if self.sessions.get(slot).is_some_and(Option::is_some) {
            self.refresh_deadline(slot, now);
        }
    }

    /// Makes sure the heap will wake us no later than the session's deadline.
    fn schedule(&mut self, slot: usize) {
        let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { return };
        if let Some(d) = s.deadline {
            if s.timer_at.is_none_or(|t| d < t) {
                s.timer_at = Some(d);
                self.timers.insert((slot, s.gen), d);
            }
        }
    }

    fn expire_timers(&mut self, now: Instant) {
        let mut fired = std::mem::take(&mut self.fired);
        self.timers.expire(now, &mut fired);
        for Entry { key: (slot, gen), at } in fired.drain(..) {
            let Some(s) = self.sessions.get_mut(slot).and_then(Option::as_mut) else { continue };
            if s.gen != gen || s.timer_at != Some(at) {
                continue;
            }
            s.timer_at = None;
            match s.deadline {
                Some(d) if d <= now => match s.phase {
                    Phase::Queued => self.close(slot, *b"sQ"),
                    Phase::Connecting => self.connect_timeout(slot, now),
                    Phase::Established => {
                        let client_expired = s.client_deadline.is_some_and(|c| c <= now);
                        let server_expired = s.server_deadline.is_some_and(|c| c <= now);
                        if client_expired {
                            self.side_timeout(slot, Side::Client, now);
                        }
                        if server_expired {
                            self.side_timeout(slot, Side::Server, now);
                        }
                        self.refresh_after_timeout(slot, now);
                    }
                },
                Some(_) => self.schedule(slot),
                None => {}
            }
        }
        self.fired = fired;
    }

    /// A connect timeout counts as a failed attempt (retries apply), as in HAProxy.
    fn connect_timeout(&mut self, slot: usize, now: Instant) {
        let retries_left = self
            .sessions
            .get(slot)
            .and_then(Option::as_ref)
            .and_then(|s| s.backend.and_then(|b| self.shared.plan.settings.get(b)).map(|st| s.retries < st.retries))
            .unwrap_or(false);
        if retries_left {
            self.connect_failed(slot, now);
        } else {
            self.close(slot, *b"sC");
        }
    }

    fn abort(&mut self, slot: usize, e: PumpError) {
        log::debug!("session {slot}: {:?} side error: {}", e.side, e.error);
        let term = match e.side {
            Side::Client => *b"CD",
            Side::Server => *b"SD",
        };
        self.close(slot, term);
    }

    /// Ends a session: sockets closed, counters released, the end reported, queues served.
    fn close(&mut self, slot: usize, term: [u8; 2]) {
        let Some(mut s) = self.sessions.get_mut(slot).and_then(Option::take) else { return };
        self.free.push(slot);
        log::debug!("session {} from {} ends: {}", slot, s.client_addr, String::from_utf8_lossy(&term));
        let now = Instant::now();
        let _ = self.poll.registry().deregister(&mut s.client);
        if let Some(mut server) = s.server.take() {
            let _ = self.poll.registry().deregister(&mut server);
        }
        s.c2s.release(&mut self.pool);
        s.s2c.release(&mut self.pool);
        // A session still queued counts the queue it leaves (HAProxy's %bq), itself included.
        let mut backend_queue = 0;
        if let Some(q) = s.backend.and_then(|bi| self.queues.get_mut(bi)) {
            if q.contains(&slot) {
                backend_queue = q.len() as u32;
                q.retain(|&x| x != slot);
            }
        }
        let actconn = self.shared.actconn.fetch_sub(1, Ordering::AcqRel);
        let feconn = self.shared.feconn.get(s.frontend).map_or(0, |c| c.fetch_sub(1, Ordering::AcqRel));
        if let Some(c) = self.shared.bindconn.get(s.bind) {
            c.fetch_sub(1, Ordering::AcqRel);
        }
        // HAProxy logs the server's sessions once this one has left it.
        let srv_conn = s.srv.as_ref().map_or(0, |srv| srv.release().saturating_sub(1));
        let beconn = s
            .backend
            .and_then(|b| self.shared.plan.backends.get(b))
            .map_or(0, |b| b.servers.iter().map(|x| x.cur.load(Ordering::Relaxed)).sum::<u32>());
        let end = SessionEnd {
            client: s.client_addr,
            accept_time: s.accept_time,
            frontend: s.frontend,
            backend: s.backend,
            server: s.srv.clone(),
            tw_ms: s.queued_at.map_or(0, |q| ms_since(s.connect_start.or(Some(now)), q)),
            tc_ms: s.connect_start.map_or(-1, |c| ms_since(s.connected_at, c)),
            tt_ms: ms_since(Some(now), s.accepted),
            bytes_to_client: s.s2c.bytes,
            bytes_from_client: s.c2s.bytes,
            term,
            retries: s.retries,
            redispatched: s.redispatched,
            local: s.client.local_inet(),
            actconn,
            feconn,
            beconn,
            srv_conn,
            backend_queue,
        };
        let plan = &self.shared.plan;
        if let Some(fe) = plan.frontends.get(end.frontend) {
            if let Some(log) = &fe.log {
                let backend = end.backend.and_then(|b| plan.backends.get(b)).map_or("", |b| b.name.as_str());
                log.session_ended(&end, &fe.name, backend);
            }
        }
        drop(s);
        // A slot freed: serve the queues, and resume accepting if a limit had stopped it.
        self.drain_queues();
        if std::mem::take(&mut self.at_limit) {
            self.accept_all();
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
            let victims: Vec<usize> = self
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
                    hit.then_some(i)
                })
                .collect();
            let term = if r.server.is_some() { *b"DD" } else { *b"UD" };
            for slot in victims {
                self.close(slot, term);
            }
        }
    }

    /// Gives queued sessions of this thread the server slots that freed up.
    fn drain_queues(&mut self) {
        let now = Instant::now();
        for bi in 0..self.queues.len() {
            while let Some(&slot) = self.queues.get(bi).and_then(|q| q.front()) {
                let Some(backend) = self.shared.plan.backends.get(bi).cloned() else { break };
                if !backend.servers.iter().any(|s| s.usable()) {
                    break;
                }
                if let Some(q) = self.queues.get_mut(bi) {
                    q.pop_front();
                }
                self.assign(slot, now);
            }
        }
    }
}
