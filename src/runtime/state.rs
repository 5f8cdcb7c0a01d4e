//! Live state shared by every event-loop thread and the health-check thread: per server,
//! atomics the hot path reads without locks; per backend, the balancer behind a mutex.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::balance::Balancer;

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
    /// Whether the server may take a new session now (health, maintenance, weight, maxconn).
    pub fn usable(&self) -> bool {
        self.up.load(Ordering::Acquire)
            && !self.maintenance.load(Ordering::Acquire)
            && self.weight > 0
            && (self.maxconn == 0 || self.cur.load(Ordering::Acquire) < self.effective_maxconn())
    }

    /// HAProxy's dynamic limit: `minconn` while the backend is quiet, rising in proportion to
    /// its load up to `maxconn` when the backend reaches `fullconn`.
    pub fn effective_maxconn(&self) -> u32 {
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
    pub balancer: Mutex<Box<dyn Balancer>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(maxconn: u32, minconn: u32, fullconn: u32, load: &Arc<AtomicU32>) -> ServerState {
        ServerState {
            index: 0,
            id: 1,
            name: "s".into(),
            full_name: "b/s".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            weight: 1,
            backup: false,
            maxconn,
            maxqueue: 0,
            minconn,
            fullconn,
            backend_load: load.clone(),
            cur: AtomicU32::new(0),
            queued: AtomicU32::new(0),
            up: AtomicBool::new(true),
            maintenance: AtomicBool::new(false),
            total: AtomicU64::new(0),
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
