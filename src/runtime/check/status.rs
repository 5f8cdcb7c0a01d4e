//! Check statuses and the "reason: ..., info: ..., check duration: ..." text HAProxy appends
//! to every state-change message.

pub use crate::model::tcp_check::CheckStatus;

impl CheckStatus {
    /// The long description HAProxy prints after "reason: ".
    pub fn description(self) -> &'static str {
        match self {
            CheckStatus::Hana => "Health analyze",
            CheckStatus::SockErr => "Socket error",
            CheckStatus::L4Ok => "Layer4 check passed",
            CheckStatus::L4Tout => "Layer4 timeout",
            CheckStatus::L4Con => "Layer4 connection problem",
            CheckStatus::L6Ok => "Layer6 check passed",
            CheckStatus::L6Tout => "Layer6 timeout",
            CheckStatus::L6Rsp => "Layer6 invalid response",
            CheckStatus::L7Tout => "Layer7 timeout",
            CheckStatus::L7Rsp => "Layer7 invalid response",
            CheckStatus::L7Ok => "Layer7 check passed",
            CheckStatus::L7OkC => "Layer7 check conditionally passed",
            CheckStatus::L7Sts => "Layer7 wrong status",
        }
    }

    /// Whether the status counts as a success for the health counter.
    pub fn passed(self) -> bool {
        matches!(self, CheckStatus::L4Ok | CheckStatus::L6Ok | CheckStatus::L7Ok | CheckStatus::L7OkC)
    }

    /// Statuses past HAProxy's L57DATA mark carry a ", code: N" part.
    fn has_code(self) -> bool {
        matches!(self, CheckStatus::L7Ok | CheckStatus::L7OkC | CheckStatus::L7Sts)
    }
}

/// HAProxy keeps a check's info text in a 128-byte C buffer: it stops at the first NUL
/// byte and keeps at most 127 bytes.
pub const DESC_MAX: usize = 127;

/// The result of one check (or of a simulated one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: CheckStatus,
    /// The info text, raw bytes as HAProxy stores them (escaped when printed).
    pub info: Vec<u8>,
    /// Milliseconds from the start of the check; `None` for simulated failures.
    pub duration_ms: Option<u64>,
    pub code: i32,
}

impl Outcome {
    pub fn new(status: CheckStatus, info: &[u8], duration_ms: Option<u64>) -> Outcome {
        let upto_nul = info.split(|&b| b == 0).next().unwrap_or_default();
        let kept = upto_nul.get(..DESC_MAX).unwrap_or(upto_nul);
        Outcome { status, info: kept.to_vec(), duration_ms, code: 0 }
    }

    /// ", reason: X[, code: N][, info: "..."][, check duration: Nms]".
    pub fn reason_text(&self) -> String {
        let mut s = format!(", reason: {}", self.status.description());
        if self.status.has_code() {
            s.push_str(&format!(", code: {}", self.code));
        }
        if !self.info.is_empty() {
            s.push_str(", info: \"");
            ascii_encode(&mut s, &self.info, b'"');
            s.push('"');
        }
        if let Some(ms) = self.duration_ms {
            s.push_str(&format!(", check duration: {ms}ms"));
        }
        s
    }
}

/// HAProxy's `chunk_asciiencode`: non-printable bytes, '<', '>' and the quote become `<XX>`.
pub fn ascii_encode(out: &mut String, bytes: &[u8], quote: u8) {
    for &b in bytes {
        if !(0x20..0x7f).contains(&b) || b == b'<' || b == b'>' || b == quote {
            out.push_str(&format!("<{b:02X}>"));
        } else {
            out.push(char::from(b));
        }
    }
}

/// `strerror(errno)` as glibc words it, from Rust's io::Error text minus " (os error N)".
pub fn strerror(err: &std::io::Error) -> String {
    let text = match err.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => err.to_string(),
    };
    match text.rfind(" (os error ") {
        Some(cut) => text.get(..cut).unwrap_or(&text).to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connection_reads_like_haproxy() {
        let o = Outcome::new(CheckStatus::L4Con, b"Connection refused", Some(0));
        assert_eq!(
            o.reason_text(),
            ", reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms"
        );
    }

    #[test]
    fn layer7_success_carries_code() {
        let o = Outcome::new(CheckStatus::L7Ok, b"(tcp-check)", Some(1));
        assert_eq!(
            o.reason_text(),
            ", reason: Layer7 check passed, code: 0, info: \"(tcp-check)\", check duration: 1ms"
        );
    }

    #[test]
    fn binary_info_is_escaped_and_cut_at_nul() {
        let o = Outcome::new(CheckStatus::L7Tout, b" (expect binary ' \x02') x\0tail", Some(300));
        assert_eq!(
            o.reason_text(),
            ", reason: Layer7 timeout, info: \" (expect binary ' <02>') x\", check duration: 300ms"
        );
    }

    #[test]
    fn strerror_drops_rust_suffix() {
        let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(strerror(&e), "Connection refused");
    }
}
