//! Server selection: one file per algorithm, behind one trait.
use std::net::IpAddr;
use std::sync::Arc;

use super::state::ServerState;

/// What a pick may depend on.
#[derive(Clone, Copy, Debug, Default)]
pub struct PickCtx {
    /// The client's address (for `source` and L4 hashes).
    pub src: Option<IpAddr>,
    /// The client's port and the frontend's address and port, for `hash` over L4 fetches.
    pub src_port: Option<u16>,
    pub dst: Option<IpAddr>,
    pub dst_port: Option<u16>,
    /// A server to avoid (the one that just failed, for `option redispatch`).
    pub avoid: Option<usize>,
}

/// A load-balancing algorithm. `pick` returns the index of a usable server in `servers`, or
/// None when every server is down or full (the caller then queues or fails).
pub trait Balancer: Send {
    fn pick(&mut self, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Option<usize>;
}

// TEMPORARY until the balance helper's algorithms land: one round-robin, so the event loop
// can be built and tested meanwhile. Replaced on merge.
pub struct BalanceSpec {
    pub algorithm: Vec<String>,
    pub hash_type: Vec<String>,
    pub hash_balance_factor: Option<u32>,
    pub allbackups: bool,
}

struct RoundRobin(usize);

impl Balancer for RoundRobin {
    fn pick(&mut self, servers: &[Arc<ServerState>], _ctx: &PickCtx) -> Option<usize> {
        for k in 0..servers.len() {
            let i = (self.0 + k) % servers.len();
            if servers.get(i).is_some_and(|s| s.usable()) {
                self.0 = i + 1;
                return Some(i);
            }
        }
        None
    }
}

pub fn build(_spec: &BalanceSpec) -> Result<Box<dyn Balancer>, String> {
    Ok(Box::new(RoundRobin(0)))
}
