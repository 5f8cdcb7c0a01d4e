//! Traffic logs of the runtime: which logger and format each frontend uses, and the
//! session record HAProxy logs when a session ends (or the connect line when it starts).
use std::sync::Arc;

use crate::logging::{self, HeaderMeta, LogFormat, Logger, SessionLog, Severity};
use crate::model::{Config, Proxy};

use super::reactor::SessionEnd;

/// How a frontend logs its sessions.
pub enum Layout {
    /// `option tcplog`.
    TcpLog,
    /// `log-format`.
    Custom(LogFormat),
    /// Neither: HAProxy logs a "Connect from" line when the session starts.
    ConnectLine,
}

pub struct FrontendLog {
    pub logger: Logger,
    pub layout: Layout,
    pub dontlognull: bool,
    pub separate_errors: bool,
}

/// The log tag HAProxy uses by default: the program's name.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "hapx".to_string())
}

/// The logger of a frontend, or None when it has no log target (HAProxy then warns that
/// the log format is ignored, which the model already did).
pub fn frontend_log(config: &Config, p: &Proxy) -> Result<Option<Arc<FrontendLog>>, super::error::StartError> {
    let mut targets = p.logs.clone();
    if p.log_global {
        targets.extend(config.global.logs.iter().cloned());
    }
    if targets.is_empty() {
        return Ok(None);
    }
    let opts = p.typed_options();
    let layout = match (&p.log_format, opts.tcplog) {
        // A format hapx cannot compile was reported unsupported by the model.
        (Some(f), _) => Layout::Custom(f.compiled.clone().map_err(|e| super::error::StartError::Log {
            proxy: p.name.clone(),
            what: format!("failed to parse log-format : {e}"),
        })?),
        (None, true) => Layout::TcpLog,
        (None, false) => Layout::ConnectLine,
    };
    Ok(Some(Arc::new(FrontendLog {
        logger: Logger::new(targets, HeaderMeta::for_process(&program_name())),
        layout,
        dontlognull: opts.dontlognull,
        separate_errors: opts.log_separate_errors,
    })))
}

impl FrontendLog {
    /// Whether logging a session needs the address the client connected to.
    pub fn needs_local_addr(&self) -> bool {
        match &self.layout {
            Layout::ConnectLine => true,
            Layout::TcpLog => false,
            Layout::Custom(f) => f.uses_frontend_addr(),
        }
    }

    /// At accept time: the connect line, when the frontend logs no session line.
    pub fn session_started(&self, client: std::net::SocketAddr, local: Option<std::net::SocketAddr>, frontend: &str) {
        if matches!(self.layout, Layout::ConnectLine) {
            self.logger.send(Severity::Info, &logging::format_connect_line(client, local, frontend));
        }
    }

    /// At the end: the session line.
    pub fn session_ended(&self, end: &SessionEnd, frontend: &str, backend: &str) {
        let mut s = SessionLog::new(end.client, end.accept_time, frontend, backend);
        s.server = end.server.as_ref().map(|srv| srv.name.clone());
        s.server_addr = end.server.as_ref().map(|srv| srv.addr);
        s.tw_ms = end.tw_ms;
        s.tc_ms = end.tc_ms;
        s.tt_ms = end.tt_ms;
        s.bytes_read = end.bytes_to_client;
        s.bytes_uploaded = end.bytes_from_client;
        s.term = end.term;
        s.actconn = end.actconn;
        s.feconn = end.feconn;
        s.beconn = end.beconn;
        s.srv_conn = end.srv_conn;
        s.backend_queue = end.backend_queue;
        s.retries = end.retries;
        s.redispatched = end.redispatched;
        s.frontend_addr = end.local;
        if !logging::should_log(&s, self.dontlognull) {
            return;
        }
        let line = match &self.layout {
            Layout::TcpLog => logging::format_tcplog(&s),
            Layout::Custom(f) => f.render(&s),
            Layout::ConnectLine => return,
        };
        self.logger.send(logging::session_severity(&s, self.separate_errors), &line);
    }
}
