//! HAProxy's health counter and the texts it prints when it moves. Pure: no I/O, no clock.
use std::time::Duration;

use super::{CheckConfig, InitState};

/// One counter in 0..=rise+fall-1; the server is healthy while it is >= rise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Health {
    pub rise: u32,
    pub fall: u32,
    pub value: u32,
}

impl Health {
    pub fn new(rise: u32, fall: u32, init: InitState) -> Health {
        let (rise, fall) = (rise.max(1), fall.max(1));
        let value = match init {
            InitState::Up => rise,
            InitState::FullyUp => rise + fall - 1,
            InitState::Down => rise - 1,
            InitState::FullyDown => 0,
        };
        Health { rise, fall, value }
    }

    pub fn max(&self) -> u32 {
        self.rise + self.fall - 1
    }

    pub fn healthy(&self) -> bool {
        self.value >= self.rise
    }

    /// Counts one check result; returns whether the counter moved (HAProxy's "report").
    /// A failure below `rise` empties the counter; a success reaching `rise` fills it.
    pub fn record(&mut self, passed: bool) -> bool {
        if passed {
            if self.value < self.max() {
                self.value += 1;
                if self.value >= self.rise {
                    self.value = self.max();
                }
                return true;
            }
        } else if self.value > 0 {
            self.value -= 1;
            if self.value < self.rise {
                self.value = 0;
            }
            return true;
        }
        false
    }

    /// ", status: N/M UP|DRAIN|DOWN" as `option log-health-checks` prints it.
    pub fn status_text(&self, weight: u32) -> String {
        if self.healthy() {
            let word = if weight > 0 { "UP" } else { "DRAIN" };
            format!(", status: {}/{} {word}", self.value - self.rise + 1, self.fall)
        } else {
            format!(", status: {}/{} DOWN", self.value, self.rise)
        }
    }

    /// The interval before the next check: `inter` when stable, `downinter` when down and
    /// empty, `fastinter` in between.
    pub fn interval(&self, cfg: &CheckConfig, server_up: bool) -> Duration {
        if self.value == self.max() {
            cfg.inter
        } else if !server_up && self.value == 0 {
            cfg.downinter
        } else {
            cfg.fastinter
        }
    }
}

/// Counts of usable servers of a backend after a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    pub active: usize,
    pub backup: usize,
}

impl Counts {
    fn tail(&self) -> &'static str {
        if self.backup > 0 && self.active == 0 {
            " Running on backup."
        } else {
            ""
        }
    }
}

fn server_label(backup: bool) -> &'static str {
    if backup {
        "Backup Server"
    } else {
        "Server"
    }
}

/// "Server be/srv is DOWN<reason>. N active and M backup servers left. ..." (with final '.').
pub(crate) fn down_text(full_name: &str, backup: bool, reason: &str, c: Counts, cur: u32, queued: u32) -> String {
    format!(
        "{} {full_name} is DOWN{reason}. {} active and {} backup servers left.{} {cur} sessions active, 0 requeued, \
         {queued} remaining in queue.",
        server_label(backup),
        c.active,
        c.backup,
        c.tail()
    )
}

/// "Server be/srv is UP<reason>. N active and M backup servers online. ..." (with final '.').
pub(crate) fn up_text(full_name: &str, backup: bool, reason: &str, c: Counts, queued: u32) -> String {
    format!(
        "{} {full_name} is UP{reason}. {} active and {} backup servers online.{} 0 sessions requeued, {queued} total \
         in queue.",
        server_label(backup),
        c.active,
        c.backup,
        c.tail()
    )
}

/// "Health check for [backup ]server be/srv succeeded|failed<reason>, status: ..." (with '.').
pub(crate) fn check_text(full_name: &str, backup: bool, passed: bool, reason: &str, status: &str) -> String {
    format!(
        "Health check for {}server {full_name} {}{reason}{status}.",
        if backup { "backup " } else { "" },
        if passed { "succeeded" } else { "failed" }
    )
}

/// "backend 'x' has no server available!" for stderr, and the syslog form without quotes.
pub(crate) fn no_server_texts(backend: &str, listen: bool) -> (String, String) {
    let kind = if listen { "proxy" } else { "backend" };
    (format!("{kind} '{backend}' has no server available!"), format!("{kind} {backend} has no server available!"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_start_falls_at_first_failure() {
        let mut h = Health::new(2, 3, InitState::Up);
        assert!(h.healthy());
        assert!(h.record(false));
        assert_eq!(h.value, 0);
        assert_eq!(h.status_text(1), ", status: 0/2 DOWN");
    }

    #[test]
    fn full_counter_needs_fall_failures() {
        let mut h = Health::new(2, 2, InitState::FullyUp);
        assert_eq!(h.value, 3);
        h.record(false);
        assert!(h.healthy());
        assert_eq!(h.status_text(1), ", status: 1/2 UP");
        h.record(false);
        assert!(!h.healthy());
        assert_eq!(h.status_text(1), ", status: 0/2 DOWN");
    }

    #[test]
    fn rise_successes_bring_it_back_and_fill_the_counter() {
        let mut h = Health::new(2, 3, InitState::FullyDown);
        h.record(true);
        assert_eq!(h.status_text(1), ", status: 1/2 DOWN");
        h.record(true);
        assert_eq!(h.value, 4);
        assert_eq!(h.status_text(1), ", status: 3/3 UP");
        assert!(!h.record(true));
        assert_eq!(h.status_text(0), ", status: 3/3 DRAIN");
    }

    #[test]
    fn down_message_matches_haproxy() {
        let t = down_text(
            "mqtt/broker_1",
            false,
            ", reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms",
            Counts { active: 0, backup: 1 },
            0,
            0,
        );
        assert_eq!(
            t,
            "Server mqtt/broker_1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check \
             duration: 0ms. 0 active and 1 backup servers left. Running on backup. 0 sessions active, 0 requeued, 0 \
             remaining in queue."
        );
    }

    #[test]
    fn up_message_for_backup_matches_haproxy() {
        let t = up_text(
            "mqtt/broker_2",
            true,
            ", reason: Layer4 check passed, check duration: 0ms",
            Counts { active: 0, backup: 1 },
            0,
        );
        assert_eq!(
            t,
            "Backup Server mqtt/broker_2 is UP, reason: Layer4 check passed, check duration: 0ms. 0 active and 1 \
             backup servers online. Running on backup. 0 sessions requeued, 0 total in queue."
        );
    }
}
