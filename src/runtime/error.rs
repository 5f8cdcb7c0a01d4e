//! Why the proxy could not start: one value per cause, with the proxy and server it concerns,
//! rendered once by the caller (main.rs prints it as an `[ALERT]` line).
use std::fmt;
use std::io;

#[derive(Debug)]
pub enum StartError {
    /// A frontend address that cannot be bound (unresolved name, no port, inherited socket).
    Frontend { frontend: String, what: String },
    /// A listening socket that cannot be bound (address in use, no permission...).
    Bind { frontend: String, addr: String, source: io::Error },
    /// A backend the runtime cannot run (its mode, its balance algorithm).
    Backend { backend: String, what: String },
    /// A server the runtime cannot reach (no address, no fixed port, an unusable source).
    Server { backend: String, server: String, what: String },
    /// A proxy whose logging cannot be set up.
    Log { proxy: String, what: String },
    /// `ulimit-n` could not be applied.
    Limits { limit: u64, source: io::Error },
    /// Binding the listeners, reading the limits or starting the threads.
    Io(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Frontend { frontend, what } => write!(f, "frontend '{frontend}': {what}"),
            StartError::Bind { frontend, addr, source } => {
                write!(f, "Starting frontend {frontend}: cannot bind socket [{addr}]: {source}")
            }
            StartError::Backend { backend, what } => write!(f, "backend '{backend}': {what}"),
            StartError::Server { backend, server, what } => write!(f, "server {backend}/{server}: {what}"),
            StartError::Log { proxy, what } => write!(f, "proxy '{proxy}': {what}"),
            StartError::Limits { limit, source } => {
                write!(f, "cannot set the file descriptor limit to {limit}: {source}")
            }
            StartError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Limits { source, .. } | StartError::Bind { source, .. } | StartError::Io(source) => {
                Some(source)
            }
            _ => None,
        }
    }
}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> StartError {
        StartError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_name_what_they_concern() {
        let e = StartError::Server { backend: "mqtt".into(), server: "b1".into(), what: "no usable address".into() };
        assert_eq!(e.to_string(), "server mqtt/b1: no usable address");
        let e = StartError::Backend { backend: "mqtt".into(), what: "only mode tcp runs yet".into() };
        assert_eq!(e.to_string(), "backend 'mqtt': only mode tcp runs yet");
        let e = StartError::Limits { limit: 10, source: io::Error::from_raw_os_error(1) };
        assert!(e.to_string().starts_with("cannot set the file descriptor limit to 10: "));
        let e = StartError::Bind {
            frontend: "mqtt".into(),
            addr: "127.0.0.1:1883".into(),
            source: io::Error::from(io::ErrorKind::AddrInUse),
        };
        assert!(e.to_string().starts_with("Starting frontend mqtt: cannot bind socket [127.0.0.1:1883]: "));
    }
}
