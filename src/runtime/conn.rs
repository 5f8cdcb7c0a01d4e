//! The sockets a session joins: TCP or UNIX stream sockets, behind one type so that the
//! loop and the byte pump do not care which.
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.shutdown(how),
            Conn::Unix(s) => s.shutdown(how),
        }
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Conn::Tcp(s) => s.take_error(),
            Conn::Unix(s) => s.take_error(),
        }
    }

    /// Whether a non-blocking connect has completed (`Err(NotConnected)`: not yet).
    pub fn connected(&self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.peer_addr().map(|_| ()),
            Conn::Unix(s) => s.peer_addr().map(|_| ()),
        }
    }

    /// The local address, for TCP.
    pub fn local_inet(&self) -> Option<SocketAddr> {
        match self {
            Conn::Tcp(s) => s.local_addr().ok(),
            Conn::Unix(_) => None,
        }
    }

    pub fn set_nodelay(&self) {
        if let Conn::Tcp(s) = self {
            let _ = s.set_nodelay(true);
        }
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Conn::Tcp(s) => s.as_raw_fd(),
            Conn::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Conn {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.register(registry, token, interests),
            Conn::Unix(s) => s.register(registry, token, interests),
        }
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.reregister(registry, token, interests),
            Conn::Unix(s) => s.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.deregister(registry),
            Conn::Unix(s) => s.deregister(registry),
        }
    }
}

/// The length of an abstract socket name: `sun_path` less its leading NUL.
const ABNS_LEN: usize = 107;

/// A listening socket.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// A UNIX listening socket at `path`, replacing a stale socket file left there.
    pub fn bind_unix(path: &Path) -> io::Result<Listener> {
        if std::fs::symlink_metadata(path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            std::fs::remove_file(path)?;
        }
        UnixListener::bind(path).map(Listener::Unix)
    }

    /// An abstract-namespace UNIX listening socket (`abns@name`). As in HAProxy, the name is
    /// padded with NUL bytes to the whole address (`abnsz@` names are not padded).
    pub fn bind_abstract(name: &str) -> io::Result<Listener> {
        use std::os::linux::net::SocketAddrExt;
        let mut padded = name.as_bytes().to_vec();
        padded.resize(ABNS_LEN.max(padded.len()), 0);
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&padded)?;
        UnixListener::bind_addr(&addr).map(Listener::Unix)
    }

    /// The next client, with its address when it has one.
    pub fn accept(&self) -> io::Result<(Conn, Option<SocketAddr>)> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, a)| (Conn::Tcp(s), Some(a))),
            Listener::Unix(l) => l.accept().map(|(s, _)| (Conn::Unix(s), None)),
        }
    }

    pub fn local_inet(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }
}

impl std::os::fd::AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

impl Source for Listener {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(registry, token, interests),
            Listener::Unix(l) => l.register(registry, token, interests),
        }
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(registry, token, interests),
            Listener::Unix(l) => l.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(registry),
            Listener::Unix(l) => l.deregister(registry),
        }
    }
}
