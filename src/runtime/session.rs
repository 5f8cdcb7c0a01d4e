//! One client↔server session, in HAProxy's connection states (src/stream.c, src/backend.c):
//! REQ (waiting for a server to be picked), QUE (queued), TAR (turn-around after a failed
//! connection), ASS (assigned, about to connect), CON (connecting), EST (established),
//! CLO. Each state holds what is valid in it; each transition says what the loop must do
//! next ([`Next`]). The loop owns sockets, timers and queues; this module owns the
//! decisions, and it is tested without a process.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::balance::{LbKind, Pick};
use super::conn::Conn;
use super::splice::SpliceMode;
use super::state::ServerState;
use super::stream::{Pipe, Ready};
use super::timer::TimerId;

/// Why a session ended: the first letter of HAProxy's termination state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Normal end.
    None,
    ClientAbort,
    ServerAbort,
    ClientTimeout,
    /// A server-side timeout (connect, queue, server).
    ServerTimeout,
    /// The server went down (`on-marked-down shutdown-sessions`).
    Down,
    /// An active server came up (`on-marked-up shutdown-backup-sessions`).
    Up,
    /// A resource ran out in the proxy (sockets, memory).
    Resource,
    /// Killed by the proxy (hard stop).
    Killed,
}

/// Where the session was when it ended: the second letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Before any server was involved (REQ).
    Request,
    Queue,
    /// Turn-around, assigned, or connecting.
    Connect,
    Data,
    /// A normal end.
    Closed,
}

/// HAProxy's two-letter termination state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    pub cause: Cause,
    pub stage: Stage,
}

impl Term {
    pub const NORMAL: Term = Term { cause: Cause::None, stage: Stage::Closed };

    pub fn new(cause: Cause, stage: Stage) -> Term {
        Term { cause, stage }
    }

    /// The letters the logs print (`--`, `SC`, `sQ`, `cD`...).
    pub fn letters(self) -> [u8; 2] {
        let c = match self.cause {
            Cause::None => b'-',
            Cause::ClientAbort => b'C',
            Cause::ServerAbort => b'S',
            Cause::ClientTimeout => b'c',
            Cause::ServerTimeout => b's',
            Cause::Down => b'D',
            Cause::Up => b'U',
            Cause::Resource => b'R',
            Cause::Killed => b'K',
        };
        let s = match self.stage {
            Stage::Request => b'R',
            Stage::Queue => b'Q',
            Stage::Connect => b'C',
            Stage::Data => b'D',
            Stage::Closed => b'-',
        };
        [c, s]
    }
}

/// The established tunnel: the server socket and the two one-way pipes.
pub struct Tunnel {
    pub server: Conn,
    pub server_ready: Ready,
    pub c2s: Pipe,
    pub s2c: Pipe,
    pub connected_at: Instant,
    /// The first side that timed out (its letter wins in the termination state).
    pub timed_out: Option<Cause>,
    /// When a side last timed out (its inactivity clock restarts there).
    pub client_idle_from: Option<Instant>,
    pub server_idle_from: Option<Instant>,
}

/// A session's connection state, with what is valid in it.
pub enum State {
    /// REQ: a server must be picked (between two calls only).
    Request,
    /// QUE: waiting in the backend's queue for a server slot, until `until`.
    Queued { since: Instant, until: Option<Instant> },
    /// TAR: waiting before the next attempt; the server stays assigned (and counted) when
    /// the retry goes to the same one.
    TurnAround { until: Instant },
    /// ASS: a server is assigned; connect now (between two calls only).
    Assigned,
    /// CON: connecting, at most until `until` (`timeout connect`).
    Connecting { server: Conn, server_ready: Ready, until: Option<Instant> },
    /// EST.
    Established(Box<Tunnel>),
}

/// What the loop must do after a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Ask the balancer (REQ).
    Pick,
    /// Open a connection to the assigned server (ASS).
    Connect,
    /// Nothing now: wait for readiness or the session's deadline.
    Wait,
    /// End the session.
    Close(Term),
}

/// How a backend retries failed connections (`retries`, `retry-on`, `option redispatch`,
/// `timeout connect`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub retries: u32,
    /// `retry-on` includes `conn-failure` (the default).
    pub on_conn_failure: bool,
    /// `option redispatch [N]`: None when off.
    pub redispatch: Option<i32>,
    pub connect_timeout: Option<Duration>,
}

/// What a retry decision needs to know about the backend now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Farm {
    /// The assigned server is up as far as checks know (HAProxy's `cur_state` RUNNING).
    pub server_running: bool,
    /// Active servers in the balancer (up, not in maintenance, weight > 0).
    pub active: usize,
    pub kind: LbKind,
}

/// HAProxy's turn-around before retrying after an asynchronous connection error: one
/// second, or `timeout connect` when shorter.
pub fn turn_around(connect_timeout: Option<Duration>) -> Duration {
    let second = Duration::from_secs(1);
    connect_timeout.filter(|t| !t.is_zero()).map_or(second, |t| t.min(second))
}

/// Whether the retry numbered `retries` (1 for the first) goes to another server
/// (HAProxy's `stream_choose_redispatch`).
fn redispatches(retries: u32, policy: &RetryPolicy, farm: &Farm) -> bool {
    let Some(interval) = policy.redispatch else { return false };
    if !farm.server_running {
        return true;
    }
    let every = if interval > 0 {
        i64::from(interval)
    } else {
        // Negative: the Nth retry counted back from the last (-1: the last one).
        i64::from(policy.retries) + 1 + i64::from(interval)
    };
    if every > 0 && i64::from(retries) % every == 0 {
        return true;
    }
    // A non-deterministic algorithm loses nothing by trying another server at once.
    farm.active > 1 && farm.kind != LbKind::Hashed
}

pub struct Session {
    pub gen: u64,
    pub client: Conn,
    pub client_ready: Ready,
    /// The client's address (UNIX clients have none: logged as 0.0.0.0:0).
    pub client_addr: SocketAddr,
    /// The address the client connected to, when a log or a pick needs it.
    pub local: Option<SocketAddr>,
    pub frontend: usize,
    pub bind: usize,
    pub backend: Option<usize>,
    /// The assigned server. While set, the session counts in its `cur` (HAProxy's
    /// `served`), through a turn-around too: that keeps leastconn off a failing server.
    pub srv: Option<Arc<ServerState>>,
    /// The last server assigned, kept for the log after the session left it.
    pub target: Option<Arc<ServerState>>,
    pub state: State,
    /// Retries made so far (HAProxy's `conn_retries`).
    pub retries: u32,
    /// The last retry went to another server.
    pub redispatched: bool,
    /// The server that just failed, for the next pick to avoid.
    pub avoid: Option<usize>,
    pub accepted: Instant,
    pub accept_time: SystemTime,
    pub queued_at: Option<Instant>,
    /// The first connection attempt began (the end of the queue wait).
    pub connect_start: Option<Instant>,
    /// The armed timer and the deadline it was armed for.
    pub timer: Option<TimerId>,
    pub timer_at: Option<Instant>,
}

impl Session {
    pub fn new(gen: u64, client: Conn, client_addr: SocketAddr, frontend: usize, bind: usize, now: Instant) -> Session {
        Session {
            gen,
            client,
            client_ready: Ready::connected(),
            client_addr,
            local: None,
            frontend,
            bind,
            backend: None,
            srv: None,
            target: None,
            state: State::Request,
            retries: 0,
            redispatched: false,
            avoid: None,
            accepted: now,
            accept_time: SystemTime::now(),
            queued_at: None,
            connect_start: None,
            timer: None,
            timer_at: None,
        }
    }

    /// The stage letter for a session ending now.
    pub fn stage(&self) -> Stage {
        match self.state {
            State::Request => Stage::Request,
            State::Queued { .. } => Stage::Queue,
            State::TurnAround { .. } | State::Assigned | State::Connecting { .. } => Stage::Connect,
            State::Established(_) => Stage::Data,
        }
    }

    /// The balancer answered (REQ → ASS, QUE, or CLO). On `Server`, the caller has already
    /// counted the session on that server.
    pub fn picked(
        &mut self,
        pick: Pick,
        server: Option<Arc<ServerState>>,
        now: Instant,
        queue: Option<Duration>,
    ) -> Next {
        match (pick, server) {
            (Pick::Server(_), Some(srv)) => {
                self.target = Some(srv.clone());
                self.srv = Some(srv);
                self.avoid = None;
                self.state = State::Assigned;
                Next::Connect
            }
            (Pick::Full, _) => {
                self.queued_at.get_or_insert(now);
                self.state = State::Queued { since: now, until: queue.map(|t| now + t) };
                Next::Wait
            }
            _ => Next::Close(Term::new(Cause::ServerAbort, Stage::Connect)),
        }
    }

    /// A connection attempt started (ASS → CON).
    pub fn connecting(&mut self, server: Conn, now: Instant, timeout: Option<Duration>) -> Next {
        self.connect_start.get_or_insert(now);
        self.state = State::Connecting { server, server_ready: Ready::default(), until: timeout.map(|t| now + t) };
        Next::Wait
    }

    /// The connection is up (CON → EST); `splice` says how each direction (request,
    /// response) may splice.
    pub fn connected(&mut self, now: Instant, splice: (SpliceMode, SpliceMode)) {
        let state = std::mem::replace(&mut self.state, State::Request);
        self.state = match state {
            State::Connecting { server, mut server_ready, .. } => {
                server_ready.writable = true;
                State::Established(Box::new(Tunnel {
                    server,
                    server_ready,
                    c2s: Pipe::new(splice.0),
                    s2c: Pipe::new(splice.1),
                    connected_at: now,
                    timed_out: None,
                    client_idle_from: None,
                    server_idle_from: None,
                }))
            }
            other => other,
        };
    }

    /// A connection attempt failed (CER): give up, retry at once, or wait out a turn-around,
    /// on the same server or another one, as HAProxy's `back_handle_st_cer` decides.
    /// `asynchronous`: the kernel reported the error after `connect` (refused, reset); a
    /// synchronous error or a timeout retries without a turn-around. Drops the server
    /// socket; releases the server when the session leaves it.
    pub fn connect_failed(&mut self, now: Instant, policy: &RetryPolicy, farm: &Farm, asynchronous: bool) -> Next {
        let timed_out = matches!(self.state, State::Connecting { until: Some(t), .. } if t <= now);
        self.state = State::Assigned;
        if self.retries >= policy.retries || !policy.on_conn_failure {
            self.release_server();
            let cause = if timed_out { Cause::ServerTimeout } else { Cause::ServerAbort };
            return Next::Close(Term::new(cause, Stage::Connect));
        }
        self.retries += 1;
        let failed = self.srv.as_ref().map(|s| s.index);
        let same_server = !redispatches(self.retries, policy, farm);
        if !same_server {
            self.redispatched = true;
            self.release_server();
            self.avoid = failed;
        }
        if asynchronous && (same_server || farm.active <= 1) {
            self.state = State::TurnAround { until: now + turn_around(policy.connect_timeout) };
            return Next::Wait;
        }
        self.after_turn_around()
    }

    /// TAR is over: connect again to the assigned server, or pick another.
    fn after_turn_around(&mut self) -> Next {
        if self.srv.is_some() {
            self.state = State::Assigned;
            Next::Connect
        } else {
            self.state = State::Request;
            Next::Pick
        }
    }

    /// The session leaves its server (it stops counting there).
    pub fn release_server(&mut self) -> Option<Arc<ServerState>> {
        let srv = self.srv.take()?;
        srv.release();
        Some(srv)
    }

    /// The deadline of the current state (the established one is computed by the loop).
    pub fn state_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Queued { until, .. } => *until,
            State::TurnAround { until } => Some(*until),
            State::Connecting { until, .. } => *until,
            State::Request | State::Assigned | State::Established(_) => None,
        }
    }

    /// The state's deadline passed (QUE: give up with `sQ`; TAR: retry; CON: a failed
    /// attempt). Established sessions' side timeouts are the loop's.
    pub fn state_expired(&mut self, now: Instant, policy: &RetryPolicy, farm: &Farm) -> Next {
        match self.state {
            State::Queued { until: Some(t), .. } if t <= now => {
                Next::Close(Term::new(Cause::ServerTimeout, Stage::Queue))
            }
            State::TurnAround { until } if until <= now => self.after_turn_around(),
            State::Connecting { until: Some(t), .. } if t <= now => self.connect_failed(now, policy, farm, false),
            _ => Next::Wait,
        }
    }

    /// Leaves the queue for a server the balancer gave (QUE → ASS).
    pub fn dequeued(&mut self, srv: Arc<ServerState>) -> Next {
        self.target = Some(srv.clone());
        self.srv = Some(srv);
        self.state = State::Assigned;
        Next::Connect
    }

    /// Bytes moved each way so far (to the client, from the client).
    pub fn bytes(&self) -> (u64, u64) {
        match &self.state {
            State::Established(t) => (t.s2c.bytes, t.c2s.bytes),
            _ => (0, 0),
        }
    }

    pub fn connected_at(&self) -> Option<Instant> {
        match &self.state {
            State::Established(t) => Some(t.connected_at),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn conn_pair() -> (Conn, Conn) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (Conn::Tcp(mio::net::TcpStream::from_std(a)), Conn::Tcp(mio::net::TcpStream::from_std(b)))
    }

    fn server(i: usize) -> Arc<ServerState> {
        Arc::new(ServerState::new(i, "be", &format!("s{i}"), SocketAddr::from(([127, 0, 0, 1], 1))))
    }

    fn session() -> Session {
        let (c, _) = conn_pair();
        Session::new(1, c, SocketAddr::from(([127, 0, 0, 1], 2)), 0, 0, Instant::now())
    }

    fn policy(retries: u32, redispatch: Option<i32>) -> RetryPolicy {
        RetryPolicy { retries, on_conn_failure: true, redispatch, connect_timeout: Some(Duration::from_secs(5)) }
    }

    const FARM: Farm = Farm { server_running: true, active: 3, kind: LbKind::ConnBased };

    /// Assigns `srv` (counted, as the loop does) and starts connecting.
    fn assign(s: &mut Session, srv: &Arc<ServerState>, now: Instant) {
        srv.acquire();
        assert_eq!(s.picked(Pick::Server(srv.index), Some(srv.clone()), now, None), Next::Connect);
        let (c, _) = conn_pair();
        assert_eq!(s.connecting(c, now, Some(Duration::from_secs(5))), Next::Wait);
    }

    #[test]
    fn termination_letters_are_haproxys() {
        assert_eq!(&Term::NORMAL.letters(), b"--");
        assert_eq!(&Term::new(Cause::ServerAbort, Stage::Connect).letters(), b"SC");
        assert_eq!(&Term::new(Cause::ServerTimeout, Stage::Queue).letters(), b"sQ");
        assert_eq!(&Term::new(Cause::ClientTimeout, Stage::Data).letters(), b"cD");
        assert_eq!(&Term::new(Cause::Down, Stage::Data).letters(), b"DD");
    }

    #[test]
    fn a_refused_connection_waits_a_turn_around_on_the_same_server_still_counted() {
        let t0 = Instant::now();
        let srv = server(0);
        let mut s = session();
        assign(&mut s, &srv, t0);
        assert_eq!(s.connect_failed(t0, &policy(3, None), &FARM, true), Next::Wait);
        assert!(matches!(s.state, State::TurnAround { until } if until == t0 + Duration::from_secs(1)));
        assert_eq!(srv.cur.load(Ordering::Acquire), 1, "the session keeps counting on its server");
        assert_eq!(s.state_expired(t0 + Duration::from_millis(999), &policy(3, None), &FARM), Next::Wait);
        assert_eq!(s.state_expired(t0 + Duration::from_secs(1), &policy(3, None), &FARM), Next::Connect);
        assert_eq!(s.retries, 1);
    }

    #[test]
    fn the_turn_around_is_timeout_connect_when_shorter() {
        assert_eq!(turn_around(Some(Duration::from_millis(200))), Duration::from_millis(200));
        assert_eq!(turn_around(Some(Duration::from_secs(5))), Duration::from_secs(1));
        assert_eq!(turn_around(None), Duration::from_secs(1));
    }

    #[test]
    fn retries_run_out_with_sc_and_release_the_server() {
        let t0 = Instant::now();
        let srv = server(0);
        let mut s = session();
        assign(&mut s, &srv, t0);
        let p = policy(2, None);
        for _ in 0..2 {
            assert_eq!(s.connect_failed(t0, &p, &FARM, true), Next::Wait);
            assert_eq!(s.state_expired(t0 + Duration::from_secs(2), &p, &FARM), Next::Connect);
            let (c, _) = conn_pair();
            s.connecting(c, t0, None);
        }
        assert_eq!(s.connect_failed(t0, &p, &FARM, true), Next::Close(Term::new(Cause::ServerAbort, Stage::Connect)));
        assert_eq!(srv.cur.load(Ordering::Acquire), 0);
        assert_eq!(s.retries, 2);
    }

    #[test]
    fn retry_on_none_gives_up_at_the_first_failure() {
        let srv = server(0);
        let mut s = session();
        assign(&mut s, &srv, Instant::now());
        let p = RetryPolicy { on_conn_failure: false, ..policy(3, None) };
        assert!(matches!(s.connect_failed(Instant::now(), &p, &FARM, true), Next::Close(_)));
        assert_eq!(s.retries, 0);
    }

    #[test]
    fn redispatch_with_several_active_servers_picks_another_at_once() {
        let t0 = Instant::now();
        let srv = server(1);
        let mut s = session();
        assign(&mut s, &srv, t0);
        assert_eq!(s.connect_failed(t0, &policy(3, Some(-1)), &FARM, true), Next::Pick);
        assert_eq!((s.redispatched, s.avoid, srv.cur.load(Ordering::Acquire)), (true, Some(1), 0));
    }

    #[test]
    fn redispatch_with_one_active_server_still_waits_a_turn_around() {
        let t0 = Instant::now();
        let srv = server(0);
        let mut s = session();
        assign(&mut s, &srv, t0);
        let farm = Farm { active: 1, ..FARM };
        // Retry 1 of 3 with redispatch on the last: same server, after a turn-around.
        assert_eq!(s.connect_failed(t0, &policy(3, Some(-1)), &farm, true), Next::Wait);
        assert!(s.srv.is_some());
        assert_eq!(s.state_expired(t0 + Duration::from_secs(1), &policy(3, Some(-1)), &farm), Next::Connect);
    }

    #[test]
    fn hashed_farms_redispatch_only_on_the_configured_retry_or_a_down_server() {
        let t0 = Instant::now();
        let farm = Farm { kind: LbKind::Hashed, ..FARM };
        let srv = server(0);
        let mut s = session();
        assign(&mut s, &srv, t0);
        let p = policy(3, Some(-1));
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            let next = s.connect_failed(t0, &p, &farm, false);
            outcomes.push((next, s.srv.is_some()));
            if next == Next::Pick {
                srv.acquire();
                s.picked(Pick::Server(0), Some(srv.clone()), t0, None);
            }
            let (c, _) = conn_pair();
            s.connecting(c, t0, None);
        }
        // Synchronous errors: no turn-around; the third (last) retry redispatches.
        assert_eq!(outcomes, vec![(Next::Connect, true), (Next::Connect, true), (Next::Pick, false)]);
        let down = Farm { server_running: false, ..farm };
        let mut s = session();
        assign(&mut s, &srv, t0);
        assert_eq!(s.connect_failed(t0, &p, &down, false), Next::Pick);
    }

    #[test]
    fn redispatch_every_n_retries() {
        let farm = Farm { kind: LbKind::Hashed, ..FARM };
        let p = policy(4, Some(2));
        let picks: Vec<bool> = (1..=4).map(|r| redispatches(r, &p, &farm)).collect();
        assert_eq!(picks, vec![false, true, false, true]);
    }

    #[test]
    fn a_connect_timeout_is_a_failed_attempt_without_turn_around() {
        let t0 = Instant::now();
        let srv = server(0);
        let mut s = session();
        assign(&mut s, &srv, t0);
        let later = t0 + Duration::from_secs(6);
        assert_eq!(s.state_expired(later, &policy(1, None), &FARM), Next::Connect);
        let (c, _) = conn_pair();
        s.connecting(c, later, Some(Duration::from_secs(5)));
        let end = s.state_expired(later + Duration::from_secs(5), &policy(1, None), &FARM);
        assert_eq!(end, Next::Close(Term::new(Cause::ServerTimeout, Stage::Connect)));
    }

    #[test]
    fn a_full_farm_queues_and_the_queue_times_out_with_sq() {
        let t0 = Instant::now();
        let mut s = session();
        assert_eq!(s.picked(Pick::Full, None, t0, Some(Duration::from_secs(1))), Next::Wait);
        assert_eq!(s.stage(), Stage::Queue);
        assert_eq!(s.state_deadline(), Some(t0 + Duration::from_secs(1)));
        let end = s.state_expired(t0 + Duration::from_secs(1), &policy(3, None), &FARM);
        assert_eq!(end, Next::Close(Term::new(Cause::ServerTimeout, Stage::Queue)));
        let mut s = session();
        assert_eq!(
            s.picked(Pick::NoServer, None, t0, None),
            Next::Close(Term::new(Cause::ServerAbort, Stage::Connect))
        );
    }

    #[test]
    fn connected_keeps_the_server_socket_in_the_tunnel() {
        let t0 = Instant::now();
        let srv = server(0);
        let mut s = session();
        assign(&mut s, &srv, t0);
        s.connected(t0, (SpliceMode::Never, SpliceMode::Auto));
        assert_eq!(s.stage(), Stage::Data);
        assert!(matches!(&s.state, State::Established(t) if t.server_ready.writable));
        assert!(matches!(&s.state, State::Established(t) if t.s2c.splice == SpliceMode::Auto));
        assert_eq!(s.connected_at(), Some(t0));
    }
}
