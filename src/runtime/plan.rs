//! From the typed Config to what the event loops run: frontends with their sockets'
//! addresses and backends with their live state.
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;
use std::time::Duration;

use crate::model::address::{Addr, Family, Host, PortSpec};
use crate::model::proxy::{Mode, Proxy};
use crate::model::Config;

use super::balance::{self, Balance};
use super::check::CheckConfig;
use super::error::StartError;
use super::splice::SpliceMode;
use super::state::{BackendState, ServerState};
use super::sys::ListenOpts;

/// Timeouts of a session, from its frontend (client side) and backend (server side).
#[derive(Clone, Copy, Debug, Default)]
pub struct Timeouts {
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub connect: Option<Duration>,
    pub queue: Option<Duration>,
    pub tunnel: Option<Duration>,
    pub client_fin: Option<Duration>,
    pub server_fin: Option<Duration>,
}

/// Where a frontend listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindAddr {
    Inet(SocketAddr),
    /// A UNIX socket path.
    Unix(std::path::PathBuf),
    /// An abstract UNIX socket (`abns@name`).
    Abstract(String),
}

impl std::fmt::Display for BindAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindAddr::Inet(a) => write!(f, "{a}"),
            BindAddr::Unix(p) => write!(f, "unix@{}", p.display()),
            BindAddr::Abstract(n) => write!(f, "abns@{n}"),
        }
    }
}

/// One listening address of a frontend.
#[derive(Clone, Debug)]
pub struct BindPlan {
    pub addr: BindAddr,
    pub opts: ListenOpts,
    /// `maxconn` on the bind line (0: none).
    pub maxconn: u32,
    pub name: Option<String>,
}

#[derive(Clone)]
pub struct FrontendPlan {
    pub name: String,
    pub binds: Vec<BindPlan>,
    /// 0: no proxy limit.
    pub maxconn: u32,
    /// Index into `Plan::backends` of the default backend, if any.
    pub backend: Option<usize>,
    pub client_timeout: Option<Duration>,
    /// `option tcpka` or `option clitcpka`.
    pub client_keepalive: bool,
    pub client_fin_timeout: Option<Duration>,
    pub splice: SpliceOpts,
    /// Where and how sessions are logged (None: no log target).
    pub log: Option<std::sync::Arc<super::traffic::FrontendLog>>,
}

/// Per-backend settings the session state machine needs.
#[derive(Clone, Copy, Debug)]
pub struct BackendSettings {
    /// `retries`, `retry-on`, `option redispatch [N]`, `timeout connect`.
    pub retry: crate::runtime::session::RetryPolicy,
    /// `option tcpka` or `option srvtcpka`.
    pub server_keepalive: bool,
    pub timeouts: Timeouts,
    pub splice: SpliceOpts,
}

/// `option splice-auto|splice-request|splice-response`, set on a frontend or a backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpliceOpts {
    pub auto: bool,
    pub request: bool,
    pub response: bool,
}

impl SpliceOpts {
    fn of(p: &Proxy) -> SpliceOpts {
        let o = p.typed_options();
        SpliceOpts { auto: o.splice_auto, request: o.splice_request, response: o.splice_response }
    }

    /// How each direction (request, response) splices when a frontend and a backend meet;
    /// `nosplice` in global turns it all off.
    pub fn modes(fe: SpliceOpts, be: SpliceOpts, enabled: bool) -> (SpliceMode, SpliceMode) {
        use SpliceMode::*;
        let pick = |always: bool, auto: bool| match (enabled, always, auto) {
            (false, _, _) => Never,
            (true, true, _) => Always,
            (true, false, true) => Auto,
            _ => Never,
        };
        let auto = fe.auto || be.auto;
        (pick(fe.request || be.request, auto), pick(fe.response || be.response, auto))
    }
}

/// A server to health-check.
pub struct CheckPlan {
    pub backend: usize,
    pub server: Arc<ServerState>,
    pub config: CheckConfig,
}

pub struct Plan {
    pub frontends: Vec<FrontendPlan>,
    pub checks: Vec<CheckPlan>,
    /// Per backend: where its server state changes are logged.
    pub backend_logs: Vec<Option<Arc<super::traffic::FrontendLog>>>,
    pub backends: Vec<Arc<BackendState>>,
    pub settings: Vec<BackendSettings>,
    /// Global maxconn (0: derived from the file limit by the caller).
    pub maxconn: u32,
    pub nbthread: usize,
    pub bufsize: usize,
    /// `maxpipes` (0: HAProxy's default, a quarter of maxconn), and splicing allowed at all
    /// (no `nosplice`).
    pub maxpipes: u32,
    pub splice: bool,
}

impl Plan {
    /// This thread's share of `maxpipes` (HAProxy's default: a quarter of maxconn).
    pub fn maxpipes_per_thread(&self) -> usize {
        let total = if self.maxpipes > 0 { self.maxpipes } else { self.maxconn / 4 };
        (total as usize).div_ceil(self.nbthread.max(1))
    }
}

fn ms(v: Option<u64>) -> Option<Duration> {
    v.filter(|&m| m > 0).map(Duration::from_millis)
}

/// Every socket address of a bind address: ports ranges expand, `*` is the any address.
fn bind_addrs(a: &Addr) -> Result<Vec<BindAddr>, String> {
    let ip = match (&a.host, a.family) {
        (Host::Ip(ip), _) => *ip,
        (Host::Name(_), _) => a.resolved.ok_or_else(|| format!("cannot resolve '{}'", a.text))?,
        (Host::Path(name), Family::Abns) => return Ok(vec![BindAddr::Abstract(name.clone())]),
        (Host::Path(path), _) => return Ok(vec![BindAddr::Unix(path.into())]),
        (Host::Fd(_), _) | (Host::Ring(_), _) => {
            return Err(format!("'{}': inherited sockets cannot be bound yet", a.text))
        }
    };
    let ip = match (ip, a.family) {
        (IpAddr::V4(v4), Family::Inet6) if v4.is_unspecified() => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        (ip, _) => ip,
    };
    let ports: Vec<u16> = match a.ports {
        PortSpec::One(p) => vec![p],
        PortSpec::Range(lo, hi) => (lo..=hi).collect(),
        PortSpec::None | PortSpec::Offset(_) => return Err(format!("'{}': missing port", a.text)),
    };
    Ok(ports.into_iter().map(|p| BindAddr::Inet(SocketAddr::new(ip, p))).collect())
}

/// Server ids as HAProxy assigns them: explicit ones kept, the others take the lowest free
/// number from 1, in declaration order.
fn server_ids(p: &Proxy) -> Vec<u32> {
    let taken: std::collections::HashSet<u32> = p.servers.iter().filter_map(|s| s.params.id).collect();
    let mut next = 1u32;
    p.servers
        .iter()
        .map(|s| {
            s.params.id.unwrap_or_else(|| {
                while taken.contains(&next) {
                    next += 1;
                }
                next += 1;
                next - 1
            })
        })
        .collect()
}

fn backend_state(p: &Proxy, fullconn: u32) -> Result<BackendState, StartError> {
    let ids = server_ids(p);
    let backend_load = Arc::new(AtomicU32::new(0));
    let mut servers = Vec::new();
    for (index, s) in p.servers.iter().enumerate() {
        let unix = match s.addr.as_ref().map(|a| (&a.host, a.family)) {
            Some((Host::Path(path), Family::Unix)) => Some(std::path::PathBuf::from(path)),
            _ => None,
        };
        let addr = match (s.resolved.first(), &s.addr) {
            _ if unix.is_some() => SocketAddr::from(([0, 0, 0, 0], 0)),
            (Some(a), Some(addr)) => match addr.ports {
                PortSpec::One(port) if port > 0 => SocketAddr::new(a.ip(), port),
                _ => return Err(server_error(p, s, "a server without a fixed port cannot run yet")),
            },
            _ => return Err(server_error(p, s, "no usable address")),
        };
        let params = &s.params;
        servers.push(Arc::new(ServerState {
            id: ids.get(index).copied().unwrap_or(index as u32 + 1),
            unix,
            source: s.params.source,
            weight: params.weight,
            backup: params.backup,
            maxconn: params.maxconn,
            maxqueue: params.maxqueue,
            minconn: params.minconn,
            fullconn,
            backend_load: backend_load.clone(),
            slowstart_ms: u32::try_from(params.slowstart_ms).unwrap_or(u32::MAX),
            maintenance: AtomicBool::new(params.disabled),
            ..ServerState::new(index, &p.name, &s.name, addr)
        }));
    }
    let spec = Balance { allbackups: p.typed_options().allbackups, ..p.balance.clone() };
    // Built once here so that what cannot run is refused before anything starts.
    balance::build(&spec).map_err(|e| backend_error(p, e.to_string()))?;
    Ok(BackendState {
        name: p.name.clone(),
        servers,
        allbackups: spec.allbackups,
        balance: spec,
        queued: AtomicU32::new(0),
    })
}

fn server_error(p: &Proxy, s: &crate::model::Server, what: impl Into<String>) -> StartError {
    StartError::Server { backend: p.name.clone(), server: s.name.clone(), what: what.into() }
}

fn backend_error(p: &Proxy, what: impl Into<String>) -> StartError {
    StartError::Backend { backend: p.name.clone(), what: what.into() }
}

/// Builds the plan; `Err` names what cannot run.
pub fn build(config: &Config) -> Result<Plan, StartError> {
    let mut backends = Vec::new();
    let mut settings = Vec::new();
    let mut checks = Vec::new();
    let mut backend_logs = Vec::new();
    let mut backend_index = std::collections::HashMap::new();
    for p in config.proxies.iter().filter(|p| p.kind.is_backend() && !p.disabled) {
        if p.mode != Mode::Tcp {
            return Err(backend_error(p, "only mode tcp runs yet"));
        }
        let bi = backends.len();
        backend_index.insert(p.name.clone(), bi);
        let state = Arc::new(backend_state(p, fullconn(config, p))?);
        checks.extend(check_plans(p, bi, &state));
        backend_logs.push(super::traffic::frontend_log(config, p)?);
        backends.push(state);
        let t = &p.timeouts;
        settings.push(BackendSettings {
            retry: crate::runtime::session::RetryPolicy {
                retries: p.retries.unwrap_or(3),
                on_conn_failure: p.retry_on_conn_failure,
                redispatch: p.typed_options().redispatch,
                connect_timeout: ms(t.connect),
            },
            server_keepalive: p.typed_options().server_keepalive,
            splice: SpliceOpts::of(p),
            timeouts: Timeouts {
                client: ms(t.client),
                server: ms(t.server),
                connect: ms(t.connect),
                queue: ms(t.queue).or(ms(t.connect)),
                tunnel: ms(t.tunnel),
                client_fin: ms(t.client_fin),
                server_fin: ms(t.server_fin),
            },
        });
    }
    let mut frontends = Vec::new();
    for p in config.proxies.iter().filter(|p| p.kind.is_frontend() && !p.disabled) {
        let mut binds = Vec::new();
        for b in &p.binds {
            let opts = ListenOpts {
                reuseport: true,
                interface: b.opts.interface.clone(),
                v6only: b.opts.v6only,
                backlog: i32::try_from(b.opts.backlog).unwrap_or(i32::MAX),
            };
            for a in &b.addrs {
                let addrs = bind_addrs(a).map_err(|what| StartError::Frontend { frontend: p.name.clone(), what })?;
                for addr in addrs {
                    binds.push(BindPlan {
                        addr,
                        opts: opts.clone(),
                        maxconn: b.opts.maxconn,
                        name: b.opts.name.clone(),
                    });
                }
            }
        }
        // An unconditional use_backend applies before default_backend, as rules do in HAProxy
        // (conditional ones are refused by the model).
        let target = match (p.use_backends.first(), &p.default_backend) {
            (Some((name, _)), _) | (None, Some((name, _))) => Some(name.clone()),
            (None, None) if p.kind.is_backend() => Some(p.name.clone()),
            (None, None) => None,
        };
        frontends.push(FrontendPlan {
            name: p.name.clone(),
            binds,
            maxconn: p.maxconn.unwrap_or(0),
            backend: target.and_then(|n| backend_index.get(&n).copied()),
            client_timeout: ms(p.timeouts.client),
            client_keepalive: p.typed_options().client_keepalive,
            client_fin_timeout: ms(p.timeouts.client_fin),
            splice: SpliceOpts::of(p),
            log: super::traffic::frontend_log(config, p)?,
        });
    }
    Ok(Plan {
        frontends,
        checks,
        backend_logs,
        backends,
        settings,
        maxconn: config.global.maxconn.unwrap_or(0),
        nbthread: config.global.nbthread.unwrap_or(1).max(1) as usize,
        bufsize: config.global.bufsize.filter(|&b| b >= 1024).unwrap_or(16384) as usize,
        maxpipes: config.global.maxpipes.unwrap_or(0),
        splice: !config.global.nosplice,
    })
}

/// The health checks of a backend's servers that have `check`.
fn check_plans(p: &Proxy, backend: usize, state: &BackendState) -> Vec<CheckPlan> {
    let mut plans = Vec::new();
    for (s, live) in p.servers.iter().zip(&state.servers) {
        let params = &s.params;
        if !params.check {
            continue;
        }
        let ip = params.check_addr.unwrap_or(live.addr.ip());
        let mut c = CheckConfig::new(SocketAddr::new(ip, params.check_port.unwrap_or(live.addr.port())));
        c.inter = Duration::from_millis(params.inter_ms);
        c.fastinter = params.fastinter_ms.map_or(c.inter, Duration::from_millis);
        c.downinter = params.downinter_ms.map_or(c.inter, Duration::from_millis);
        c.rise = params.rise;
        c.fall = params.fall;
        c.timeout = ms(p.timeouts.check);
        c.connect_timeout = ms(p.timeouts.connect);
        c.tcp_check = p.typed_options().tcp_check;
        c.rules = p.tcp_check.clone();
        c.init_state = params.init_state;
        c.log_health_checks = p.typed_options().log_health_checks;
        c.listen = p.kind == crate::model::ProxyKind::Listen;
        c.on_marked_down_shutdown_sessions = params.shutdown_on_down;
        c.on_marked_up_shutdown_backup_sessions = params.shutdown_backup_on_up;
        c.observe_layer4 = params.observe_layer4;
        c.error_limit = params.error_limit;
        c.on_error = params.on_error;
        plans.push(CheckPlan { backend, server: live.clone(), config: c });
    }
    plans
}

/// `fullconn`, or HAProxy's default: a tenth of the summed `maxconn` of the frontends that
/// send traffic to this backend.
fn fullconn(config: &Config, backend: &Proxy) -> u32 {
    if let Some(f) = backend.fullconn {
        return f;
    }
    let feeding = config.proxies.iter().filter(|f| {
        f.kind.is_frontend()
            && (std::ptr::eq(*f, backend)
                || f.default_backend.as_ref().is_some_and(|(n, _)| n == &backend.name)
                || f.use_backends.iter().any(|(n, _)| n == &backend.name))
    });
    let sum: u64 = feeding.map(|f| u64::from(f.maxconn.unwrap_or(config.global.maxconn.unwrap_or(0)))).sum();
    u32::try_from(sum / 10).unwrap_or(u32::MAX)
}
