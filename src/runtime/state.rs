//! Live state shared by every event-loop thread and the health-check thread: per server,
//! atomics the hot path reads without locks. Balancers are per thread (built from the
//! backend's spec), so a pick takes no lock shared by threads.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::balance::Balance;

/// Milliseconds on a process-wide monotonic clock (never 0 after the first call).
pub fn clock_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1
}

/// One server of a backend, as the runtime sees it.
#[derive(Debug)]
pub struct ServerState {
    /// Position in its backend's `servers`.
    pub index: usize,
    /// Its `id` (HAProxy's puid): explicit, or the lowest unused from 1 in declaration order.
    pub id: u32,
    pub name: String,
    /// `backend/server`, as messages and logs name it.
    pub full_name: String,
    pub addr: SocketAddr,
    /// A UNIX socket server: its path (then `addr` means nothing).
    pub unix: Option<std::path::PathBuf>,
    /// `source`: the local address connections to this server leave from.
    pub source: Option<SocketAddr>,
    /// The configured weight (0..=256); 0 takes no new traffic.
    pub weight: u32,
    pub backup: bool,
    /// 0: unlimited.
    pub maxconn: u32,
    /// 0: unlimited.
    pub maxqueue: u32,
    pub minconn: u32,
    /// The backend's `fullconn` (0: no dynamic limit) and its live session count, shared by
    /// its servers: with `minconn`, a server's limit grows with the backend's load.
    pub fullconn: u32,
    pub backend_load: Arc<AtomicU32>,
    /// `slowstart` (ms; 0: none) and when the server last came up (ms on the process clock,
    /// 0: not ramping): its weight and limit grow from 1 to full over that time.
    pub slowstart_ms: u32,
    pub up_since_ms: AtomicU64,
    /// Sessions currently assigned (connecting or established).
    pub cur: AtomicU32,
    /// Sessions waiting in this server's queue.
    pub queued: AtomicU32,
    /// Health: up as far as checks know (true when checks are off).
    pub up: AtomicBool,
    /// Put in maintenance (`disabled`).
    pub maintenance: AtomicBool,
    /// Sessions ever assigned, for stats.
    pub total: AtomicU64,
}

impl ServerState {
    /// A server with HAProxy's defaults (weight 1, no limits, up, checks' view: up); the
    /// plan and the tests set what differs with struct update syntax.
    pub fn new(index: usize, backend: &str, name: &str, addr: SocketAddr) -> ServerState {
        ServerState {
            index,
            id: index as u32 + 1,
            name: name.to_string(),
            full_name: format!("{backend}/{name}"),
            addr,
            unix: None,
            source: None,
            weight: 1,
            backup: false,
            maxconn: 0,
            maxqueue: 0,
            minconn: 0,
            fullconn: 0,
            backend_load: Arc::new(AtomicU32::new(0)),
            slowstart_ms: 0,
            up_since_ms: AtomicU64::new(0),
            cur: AtomicU32::new(0),
            queued: AtomicU32::new(0),
            up: AtomicBool::new(true),
            maintenance: AtomicBool::new(false),
            total: AtomicU64::new(0),
        }
    }

    /// Whether the server may take a new session now (health, maintenance, weight, maxconn).
    pub fn usable(&self) -> bool {
        self.up.load(Ordering::Acquire)
            && !self.maintenance.load(Ordering::Acquire)
            && self.weight > 0
            && (self.maxconn == 0 || self.cur.load(Ordering::Acquire) < self.effective_maxconn())
    }

    /// How far a slow start has ramped, in thousandths (1000: done or none).
    fn ramp(&self) -> u64 {
        let since = self.up_since_ms.load(Ordering::Acquire);
        if self.slowstart_ms == 0 || since == 0 {
            return 1000;
        }
        let elapsed = clock_ms().saturating_sub(since);
        (elapsed * 1000 / u64::from(self.slowstart_ms)).min(1000)
    }

    /// The weight balancers use: the configured one, scaled down during a slow start (at
    /// least 1 while the server takes traffic at all).
    pub fn eweight(&self) -> u32 {
        let ramp = self.ramp();
        if ramp == 1000 || self.weight == 0 {
            return self.weight;
        }
        u32::try_from(u64::from(self.weight) * ramp / 1000).unwrap_or(self.weight).max(1)
    }

    /// The server came back up: start its slow start, if it has one.
    pub fn mark_up(&self) {
        if self.slowstart_ms > 0 {
            self.up_since_ms.store(clock_ms().max(1), Ordering::Release);
        }
    }

    /// HAProxy's dynamic limit: `minconn` while the backend is quiet, rising in proportion to
    /// its load up to `maxconn` when the backend reaches `fullconn`; and during a slow start,
    /// in proportion to the ramp.
    pub fn effective_maxconn(&self) -> u32 {
        let ramp = self.ramp();
        let limit = self.load_limit();
        if ramp == 1000 || limit == 0 {
            return limit;
        }
        u32::try_from(u64::from(limit) * ramp / 1000).unwrap_or(limit).max(1)
    }

    fn load_limit(&self) -> u32 {
        if self.maxconn == 0 || self.minconn == 0 || self.fullconn == 0 || self.minconn >= self.maxconn {
            return self.maxconn;
        }
        let load = self.backend_load.load(Ordering::Acquire);
        if load >= self.fullconn {
            return self.maxconn;
        }
        let scaled = u64::from(load) * u64::from(self.maxconn) / u64::from(self.fullconn);
        u32::try_from(scaled).unwrap_or(self.maxconn).max(self.minconn)
    }

    /// A session is assigned to this server.
    pub fn acquire(&self) {
        self.cur.fetch_add(1, Ordering::AcqRel);
        self.backend_load.fetch_add(1, Ordering::AcqRel);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// A session leaves this server; returns the count before.
    pub fn release(&self) -> u32 {
        self.backend_load.fetch_sub(1, Ordering::AcqRel);
        self.cur.fetch_sub(1, Ordering::AcqRel)
    }

    /// Whether the server is eligible at all (up, not in maintenance, weight > 0), full or not.
    pub fn eligible(&self) -> bool {
        self.up.load(Ordering::Acquire) && !self.maintenance.load(Ordering::Acquire) && self.weight > 0
    }
}

/// A backend (or the backend half of a listen).
pub struct BackendState {
    pub name: String,
    pub servers: Vec<Arc<ServerState>>,
    /// `option allbackups`: use every backup server at once instead of the first one.
    pub allbackups: bool,
    /// What each thread builds its own balancer from.
    pub balance: Balance,
    /// Sessions waiting in this backend's queues, on every thread: a freed slot wakes the
    /// other threads only when some wait.
    pub queued: AtomicU32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(maxconn: u32, minconn: u32, fullconn: u32, load: &Arc<AtomicU32>) -> ServerState {
        ServerState {
            maxconn,
            minconn,
            fullconn,
            backend_load: load.clone(),
            ..ServerState::new(0, "b", "s", SocketAddr::from(([127, 0, 0, 1], 1)))
        }
    }

    #[test]
    fn minconn_limit_grows_with_the_backend_load_up_to_maxconn() {
        let load = Arc::new(AtomicU32::new(0));
        let s = server(100, 10, 1000, &load);
        assert_eq!(s.effective_maxconn(), 10);
        load.store(500, Ordering::Release);
        assert_eq!(s.effective_maxconn(), 50);
        load.store(1000, Ordering::Release);
        assert_eq!(s.effective_maxconn(), 100);
        assert_eq!(server(100, 0, 1000, &load).effective_maxconn(), 100);
    }

    #[test]
    fn slow_start_ramps_weight_and_limit_from_one() {
        let load = Arc::new(AtomicU32::new(0));
        let mut s = server(100, 0, 0, &load);
        s.weight = 50;
        s.slowstart_ms = 60_000;
        assert_eq!(s.eweight(), 50, "no ramp before the server comes back up");
        s.mark_up();
        assert!(s.eweight() >= 1 && s.eweight() < 5, "{}", s.eweight());
        assert!(s.effective_maxconn() >= 1 && s.effective_maxconn() < 10);
        // Once the slow start is over, the full weight is back.
        std::thread::sleep(std::time::Duration::from_millis(3));
        s.slowstart_ms = 1;
        assert_eq!(s.eweight(), 50);
        assert_eq!(s.effective_maxconn(), 100);
    }

    #[test]
    fn a_full_server_is_not_usable_until_a_session_leaves() {
        let load = Arc::new(AtomicU32::new(0));
        let s = server(1, 0, 0, &load);
        assert!(s.usable());
        s.acquire();
        assert!(!s.usable() && s.eligible());
        assert_eq!(s.release(), 1);
        assert!(s.usable());
        assert_eq!(load.load(Ordering::Acquire), 0);
    }
}
