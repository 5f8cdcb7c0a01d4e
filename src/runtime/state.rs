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
            && (self.maxconn == 0 || self.cur.load(Ordering::Acquire) < self.maxconn)
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
