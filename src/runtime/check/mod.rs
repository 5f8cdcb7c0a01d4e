//! Health checks: the tcp-check engine (connect, send, expect) and its scheduler, on one
//! thread of its own, updating `ServerState::up` and reporting changes in HAProxy's words.
//!
//! One thread, one mio `Poll`, non-blocking connects and a binary heap of deadlines: 20,000
//! servers cost 20,000 small structs, not 20,000 threads.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::state::ServerState;

mod engine;
mod health;
mod rules;
pub mod status;

pub use crate::model::regex;
pub use crate::model::tcp_check::{decode_hex, Expect, ExpectKind, TcpCheckRule};
pub use engine::{Checker, CheckerHandle};
pub use status::{CheckStatus, Outcome};

pub use crate::model::server::{InitState, OnError};

/// The health-check settings of one server, keywords already resolved.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// Where checks connect: the server address with `addr` and `port` applied.
    pub addr: SocketAddr,
    pub inter: Duration,
    /// While the counter is neither full nor empty (defaults to `inter`).
    pub fastinter: Duration,
    /// While the server is down with an empty counter (defaults to `inter`).
    pub downinter: Duration,
    pub rise: u32,
    pub fall: u32,
    /// `timeout check`; without it a whole check gets `inter`.
    pub timeout: Option<Duration>,
    /// `timeout connect`; bounds the connect phase only when `timeout check` is set.
    pub connect_timeout: Option<Duration>,
    /// `option tcp-check`: run `rules` (an implicit connect first when they start with none).
    pub tcp_check: bool,
    pub rules: Vec<TcpCheckRule>,
    pub init_state: InitState,
    /// `option log-health-checks`: report every check that changes the picture.
    pub log_health_checks: bool,
    /// The proxy is a `listen` section (HAProxy then calls it "proxy", not "backend").
    pub listen: bool,
    /// `on-marked-down shutdown-sessions`.
    pub on_marked_down_shutdown_sessions: bool,
    /// `on-marked-up shutdown-backup-sessions`.
    pub on_marked_up_shutdown_backup_sessions: bool,
    /// `observe layer4`: traffic errors reported through `report_connection_error` count.
    pub observe_layer4: bool,
    /// `error-limit` (HAProxy's default: 10).
    pub error_limit: u32,
    pub on_error: OnError,
    /// `spread-checks` (global, percent): random jitter added to each interval.
    pub spread_checks: u32,
}

impl CheckConfig {
    /// HAProxy's defaults: inter 2s, rise 2, fall 3, a plain layer-4 check.
    pub fn new(addr: SocketAddr) -> CheckConfig {
        let inter = Duration::from_millis(2000);
        CheckConfig {
            addr,
            inter,
            fastinter: inter,
            downinter: inter,
            rise: 2,
            fall: 3,
            timeout: None,
            connect_timeout: None,
            tcp_check: false,
            rules: Vec::new(),
            init_state: InitState::Up,
            log_health_checks: false,
            listen: false,
            on_marked_down_shutdown_sessions: false,
            on_marked_up_shutdown_backup_sessions: false,
            observe_layer4: false,
            error_limit: 10,
            on_error: OnError::FailCheck,
            spread_checks: 0,
        }
    }
}

/// The stderr tag or syslog level of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Emergency,
    Alert,
    Warning,
    Notice,
}

/// What a `StateChange` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The server was marked down.
    Down,
    /// The server was marked up.
    Up,
    /// One check result worth a line under `option log-health-checks`; no state change.
    CheckResult,
}

/// One event for the caller to print and log, and to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// The server's name (without the backend).
    pub server: String,
    pub backend: String,
    pub kind: ChangeKind,
    /// The server's state after the event.
    pub up: bool,
    /// The message after the `[WARNING]  (pid) : ` tag, final '.' included.
    pub text: String,
    /// The stderr tag HAProxy uses for `text`.
    pub severity: Severity,
    /// The syslog level HAProxy uses for `text`.
    pub log_severity: Severity,
    /// The backend just lost its last usable server.
    pub backend_now_empty: bool,
    /// With `backend_now_empty`: the `[ALERT]` line, e.g. "backend 'mqtt' has no server available!".
    pub no_server_text: Option<String>,
    /// With `backend_now_empty`: the same for syslog (level emergency), without quotes.
    pub no_server_log: Option<String>,
    /// `on-marked-down shutdown-sessions`: close this server's sessions now.
    pub shutdown_sessions: bool,
    /// `on-marked-up shutdown-backup-sessions`: close the sessions on the backend's backups.
    pub shutdown_backup_sessions: bool,
}

/// Receives every `StateChange` of one server, on the checker thread.
pub type Notify = Arc<dyn Fn(&StateChange) + Send + Sync>;

/// One server to check: its live state, its settings, its backend's name, its listener.
pub type Target = (Arc<ServerState>, CheckConfig, String, Notify);
