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
