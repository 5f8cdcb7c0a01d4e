//! The runtime: a hand-rolled mio event loop forwarding bytes between clients and servers
//! with HAProxy's semantics. It consumes the typed `model::Config` and never sees text.
pub mod balance;
pub mod check;
pub mod state;
