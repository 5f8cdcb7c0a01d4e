//! `server` and `default-server` options as typed values, with HAProxy's messages for bad
//! values. A server starts from its proxy's `default-server` values, then applies its own.
use std::net::IpAddr;

use super::address::{self, AddrContext, Host};
use super::units::{atoi, parse_time, TimeUnit, UnitErrorKind};

/// The state a server starts in before its first check (HAProxy 3.x `init-state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InitState {
    /// Up, with the counter at `rise` fall: the first failed check marks it down (HAProxy's
    /// historic start).
    #[default]
    Up,
    /// Up with a full counter: it takes `fall` failed checks to mark it down.
    FullyUp,
    /// Down, one successful check from up.
    Down,
    /// Down with an empty counter: it takes `rise` successful checks.
    FullyDown,
}

/// What `on-error` does once `error-limit` consecutive traffic errors were observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnError {
    /// Only check again at `fastinter` at the latest.
    FastInter,
    /// Count one failed check (HAProxy's default).
    #[default]
    FailCheck,
    /// Leave one check before down: the next failure marks the server down.
    SuddenDeath,
    /// Mark the server down at once.
    MarkDown,
}

/// The `addr` option: where checks go, resolved at parse time as HAProxy does.
fn check_addr(value: &str) -> Result<IpAddr, String> {
    let invalid = || format!("'addr' : invalid address: '{value}' in '{value}'.");
    let addrs = address::parse_addr(value, AddrContext::Source).map_err(|e| format!("'addr' : {}.", e.message()))?;
    let a = addrs.first().ok_or_else(invalid)?;
    match a.host {
        Host::Ip(ip) => Ok(ip),
        _ => a.resolved.ok_or_else(invalid),
    }
}

/// What the runtime needs to know of a server, beyond its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerParams {
    pub weight: u32,
    /// 0: unlimited.
    pub maxconn: u32,
    /// 0: unlimited.
    pub maxqueue: u32,
    pub minconn: u32,
    pub backup: bool,
    pub disabled: bool,
    pub check: bool,
    pub inter_ms: u64,
    pub fastinter_ms: Option<u64>,
    pub downinter_ms: Option<u64>,
    pub rise: u32,
    pub fall: u32,
    /// `port` and `addr`: where checks go instead of the server's address.
    pub check_port: Option<u16>,
    pub check_addr: Option<IpAddr>,
    pub slowstart_ms: u64,
    pub id: Option<u32>,
    /// `source`: the local address connections leave from (port 0: any).
    pub source: Option<std::net::SocketAddr>,
    pub init_state: InitState,
    /// `on-marked-down shutdown-sessions`
    pub shutdown_on_down: bool,
    /// `on-marked-up shutdown-backup-sessions`
    pub shutdown_backup_on_up: bool,
    /// `observe layer4`
    pub observe_layer4: bool,
    pub error_limit: u32,
    pub on_error: OnError,
}

impl Default for ServerParams {
    /// HAProxy's defaults: weight 1, checks every 2s, up after 2, down after 3.
    fn default() -> ServerParams {
        ServerParams {
            weight: 1,
            maxconn: 0,
            maxqueue: 0,
            minconn: 0,
            backup: false,
            disabled: false,
            check: false,
            inter_ms: 2000,
            fastinter_ms: None,
            downinter_ms: None,
            rise: 2,
            fall: 3,
            check_port: None,
            check_addr: None,
            slowstart_ms: 0,
            id: None,
            source: None,
            init_state: InitState::Up,
            shutdown_on_down: false,
            shutdown_backup_on_up: false,
            observe_layer4: false,
            error_limit: 10,
            on_error: OnError::FailCheck,
        }
    }
}

/// A non-zero check interval, with 2.6's wording (it names `inter` "agent-inter").
fn interval(opt: &str, value: &str, server: &str) -> Result<u64, String> {
    let shown = if opt == "inter" { "agent-inter" } else { opt };
    match parse_time(value, TimeUnit::Ms) {
        Ok(t) if t.millis() == 0 => Err(format!("invalid value 0 for argument '{opt}' of server {server}..")),
        Ok(t) => Ok(t.millis()),
        Err(e) => match e.kind {
            UnitErrorKind::Unexpected { .. } => {
                Err(format!("unexpected character '{}' in '{shown}' argument of server {server}..", e.ch()))
            }
            _ => Err(format!("timer overflow in argument <{value}> to <{opt}> of server {server}, maximum value is 2147483647 ms (~24.8 days)..")),
        },
    }
}

impl ServerParams {
    /// Applies one option (`value` is "" for flags). Unknown options are left to the caller,
    /// which reports them; `Err` is HAProxy's text for a bad value.
    pub fn apply(&mut self, opt: &str, value: &str, server: &str) -> Result<(), String> {
        let uint = |v: &str| u32::try_from(atoi(v).max(0)).unwrap_or(0);
        match opt {
            "weight" => {
                let w = atoi(value);
                if !(0..=256).contains(&w) {
                    return Err(format!("weight of server {server} is not within 0 and 256 ({w}).."));
                }
                self.weight = uint(value);
            }
            "maxconn" => self.maxconn = uint(value),
            "maxqueue" => self.maxqueue = uint(value),
            "minconn" => self.minconn = uint(value),
            "backup" => self.backup = true,
            "disabled" => self.disabled = true,
            "enabled" => self.disabled = false,
            "check" => self.check = true,
            "no-check" => self.check = false,
            "inter" => self.inter_ms = interval(opt, value, server)?,
            "fastinter" => self.fastinter_ms = Some(interval(opt, value, server)?),
            "downinter" => self.downinter_ms = Some(interval(opt, value, server)?),
            "rise" | "fall" => {
                let n = atoi(value);
                if n <= 0 {
                    return Err(format!("'{opt}' has to be > 0.."));
                }
                if opt == "rise" {
                    self.rise = uint(value);
                } else {
                    self.fall = uint(value);
                }
            }
            "port" => self.check_port = u16::try_from(atoi(value)).ok(),
            "addr" => self.check_addr = Some(check_addr(value)?),
            "slowstart" => match parse_time(value, TimeUnit::Ms) {
                Ok(t) => self.slowstart_ms = t.millis(),
                Err(e) => {
                    return Err(format!(
                        "unexpected character '{}' in 'slowstart' argument of server {server}..",
                        e.ch()
                    ))
                }
            },
            "id" => {
                if atoi(value) <= 0 {
                    return Err("'id' : custom id has to be > 0.".into());
                }
                self.id = Some(uint(value));
            }
            "init-state" => {
                self.init_state = match value {
                    "up" => InitState::Up,
                    "fully-up" => InitState::FullyUp,
                    "down" => InitState::Down,
                    "fully-down" => InitState::FullyDown,
                    _ => {
                        return Err(format!(
                            "'init-state' expects one of 'fully-up', 'up', 'down' or 'fully-down' but got '{value}'."
                        ))
                    }
                }
            }
            "on-marked-down" => match value {
                "shutdown-sessions" => self.shutdown_on_down = true,
                _ => return Err(format!("'on-marked-down' expects 'shutdown-sessions' but got '{value}'.")),
            },
            "on-marked-up" => match value {
                "shutdown-backup-sessions" => self.shutdown_backup_on_up = true,
                _ => return Err(format!("'on-marked-up' expects 'shutdown-backup-sessions' but got '{value}'.")),
            },
            "observe" => match value {
                "none" | "layer7" => self.observe_layer4 = false,
                "layer4" => self.observe_layer4 = true,
                _ => {
                    return Err(format!("'observe' expects one of 'none', 'layer4', 'layer7' but got '{value}'."))
                }
            },
            "error-limit" => {
                if atoi(value) < 1 {
                    return Err("error-limit has to be > 0..".into());
                }
                self.error_limit = uint(value);
            }
            "on-error" => {
                self.on_error = match value {
                    "fastinter" => OnError::FastInter,
                    "fail-check" => OnError::FailCheck,
                    "sudden-death" => OnError::SuddenDeath,
                    "mark-down" => OnError::MarkDown,
                    _ => return Err(format!(
                        "'on-error' expects one of 'fastinter', 'fail-check', 'sudden-death' or 'mark-down' but got '{value}'."
                    )),
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(words: &[(&str, &str)]) -> Result<ServerParams, String> {
        let mut p = ServerParams::default();
        for (o, v) in words {
            p.apply(o, v, "s1")?;
        }
        Ok(p)
    }

    #[test]
    fn defaults_are_haproxys() {
        let p = ServerParams::default();
        assert_eq!((p.weight, p.inter_ms, p.rise, p.fall, p.error_limit), (1, 2000, 2, 3, 10));
    }

    #[test]
    fn check_timings_and_limits_are_typed() {
        let p = apply(&[
            ("check", ""),
            ("inter", "2s"),
            ("fastinter", "500ms"),
            ("rise", "3"),
            ("fall", "2"),
            ("maxconn", "10"),
        ])
        .unwrap_or_default();
        assert!(p.check);
        assert_eq!((p.inter_ms, p.fastinter_ms, p.rise, p.fall, p.maxconn), (2000, Some(500), 3, 2, 10));
    }

    #[test]
    fn bad_values_get_haproxys_words() {
        assert_eq!(apply(&[("weight", "300")]), Err("weight of server s1 is not within 0 and 256 (300)..".into()));
        assert_eq!(
            apply(&[("inter", "abc")]),
            Err("unexpected character 'a' in 'agent-inter' argument of server s1..".into())
        );
        assert_eq!(apply(&[("inter", "0")]), Err("invalid value 0 for argument 'inter' of server s1..".into()));
        assert_eq!(apply(&[("rise", "0")]), Err("'rise' has to be > 0..".into()));
        assert_eq!(
            apply(&[("slowstart", "1x")]),
            Err("unexpected character 'x' in 'slowstart' argument of server s1..".into())
        );
    }

    #[test]
    fn check_options_are_typed_with_haproxys_refusals() {
        let p = apply(&[("on-error", "sudden-death"), ("init-state", "fully-down"), ("addr", "10.0.0.1")]);
        let p = p.unwrap_or_default();
        assert_eq!((p.on_error, p.init_state), (OnError::SuddenDeath, InitState::FullyDown));
        assert_eq!(p.check_addr, Some(IpAddr::from([10, 0, 0, 1])));
        assert_eq!(
            apply(&[("on-error", "foo")]),
            Err("'on-error' expects one of 'fastinter', 'fail-check', 'sudden-death' or 'mark-down' but got 'foo'."
                .into())
        );
        assert_eq!(
            apply(&[("on-marked-down", "foo")]),
            Err("'on-marked-down' expects 'shutdown-sessions' but got 'foo'.".into())
        );
        assert_eq!(
            apply(&[("observe", "foo")]),
            Err("'observe' expects one of 'none', 'layer4', 'layer7' but got 'foo'.".into())
        );
        assert_eq!(apply(&[("error-limit", "x")]), Err("error-limit has to be > 0..".into()));
        assert_eq!(apply(&[("id", "0")]), Err("'id' : custom id has to be > 0.".into()));
        assert_eq!(apply(&[("addr", "::1")]), Err("'addr' : invalid address: ':' in '::1'.".into()));
    }
}
