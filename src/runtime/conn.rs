//! The sockets a session joins: TCP or UNIX stream sockets, behind one type so that the
//! loop and the byte pump do not care which.
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::sys;

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

/// How long a soft-stopped listener stays open after it stopped taking new connections: the
/// handshakes under way when it stopped (one round trip) complete and are accepted. Well under
/// the second after which a client sends a dropped SYN again, so that the second SYN finds
/// this listener closed and reaches the new process.
pub const STOP_LINGER: Duration = Duration::from_millis(200);

/// Threads of this process whose listeners are stopping and not yet closed: the last one to
/// close gives the choice of a socket in each SO_REUSEPORT group back to the kernel.
static STOPPING_THREADS: AtomicUsize = AtomicUsize::new(0);

/// A soft stop of one thread's listeners that resets no connection the kernel gave them.
///
/// On Linux, closing a listening socket resets every connection in its accept queue and every
/// handshake it has under way, and with SO_REUSEPORT the kernel keeps handing new connections
/// to the old process's sockets until they are closed. So the stop goes in steps:
/// - every new connection of each group goes to a socket of the new process: this process's
///   sockets joined the group first, so the new process's first socket comes right after them
///   (`sys::choose_in_reuseport_group`);
/// - should one still come here (the group is not laid out as expected, or the choice is
///   given back before the last close), its SYN is dropped and the client sends it again a
///   second later, to a listener still open (`Listener::stop_taking_new`);
/// - the caller keeps accepting and serving what is queued and what completes its handshake
///   for `STOP_LINGER`, then accepts once more and closes them.
#[derive(Debug, Default)]
pub struct ListenerStop {
    phase: StopPhase,
}

#[derive(Debug, Default)]
enum StopPhase {
    #[default]
    Listening,
    /// Taking nothing new since `since`; `groups` are duplicates of the TCP listeners (one
    /// per group), to give the choice back even if the thread ends without closing them in
    /// order (a hard stop during the linger).
    Lingering {
        since: Instant,
        groups: Vec<OwnedFd>,
    },
    Closing,
}

impl ListenerStop {
    /// One turn of a stopping loop; `per_group`: how many sockets this process has in each
    /// group (one per thread). The first call stops `listeners` from taking new connections.
    /// True once they may be closed, after the caller has accepted what is queued.
    pub fn step<'a>(&mut self, listeners: impl Iterator<Item = &'a Listener>, per_group: usize) -> bool {
        match &self.phase {
            StopPhase::Listening => {
                self.phase = start(listeners, per_group);
                false
            }
            StopPhase::Lingering { since, .. } if since.elapsed() < STOP_LINGER => false,
            StopPhase::Lingering { .. } | StopPhase::Closing => {
                self.finish();
                true
            }
        }
    }

    /// The last thread to close gives the kernel its own choice back.
    fn finish(&mut self) {
        if let StopPhase::Lingering { groups, .. } = std::mem::replace(&mut self.phase, StopPhase::Closing) {
            if STOPPING_THREADS.fetch_sub(1, Ordering::AcqRel) == 1 {
                for fd in &groups {
                    let _ = sys::choose_in_reuseport_group(fd, None);
                }
            }
        }
    }
}

/// Stops `listeners` from taking new connections (see `ListenerStop`).
fn start<'a>(listeners: impl Iterator<Item = &'a Listener>, per_group: usize) -> StopPhase {
    STOPPING_THREADS.fetch_add(1, Ordering::AcqRel);
    let first_new = u32::try_from(per_group).unwrap_or(u32::MAX);
    let mut groups = Vec::new();
    for l in listeners {
        // Steered first, so that few SYNs meet the filter.
        if let Listener::Tcp(t) = l {
            match sys::choose_in_reuseport_group(t, Some(first_new)) {
                // Without a group (no SO_REUSEPORT), nobody else listens there anyway.
                Err(e) => log::debug!("steering new connections to the new process: {e}"),
                Ok(()) => match t.as_fd().try_clone_to_owned() {
                    Ok(fd) => groups.push(fd),
                    Err(e) => {
                        log::warn!("keeping a stopping listener: {e}");
                        let _ = sys::choose_in_reuseport_group(t, None);
                    }
                },
            }
        }
        if let Err(e) = l.stop_taking_new() {
            log::warn!("stopping a listener: {e}; connections queued on it may be reset");
        }
    }
    StopPhase::Lingering { since: Instant::now(), groups }
}

impl Drop for ListenerStop {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Listener {
    /// Stops the kernel from queueing new connections on this listener, keeping those it
    /// queued and the handshakes under way (see `sys::drop_new_handshakes`).
    pub fn stop_taking_new(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => sys::drop_new_handshakes(l),
            // The new process binds the path anew: nobody reaches this socket any more.
            Listener::Unix(_) => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    fn reuseport_listener(addr: &SocketAddr) -> Listener {
        let opts = sys::ListenOpts { reuseport: true, backlog: 64, ..Default::default() };
        Listener::Tcp(TcpListener::from_std(sys::tcp_listener(addr, opts).expect("bind")))
    }

    fn accept_within(l: &Listener, within: Duration) -> Option<Conn> {
        let deadline = Instant::now() + within;
        loop {
            match l.accept() {
                Ok((c, _)) => return Some(c),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return None,
            }
        }
    }

    #[test]
    fn a_stopped_listener_keeps_what_is_queued_and_drops_new_syns_without_a_reset() {
        let l = reuseport_listener(&SocketAddr::from(([127, 0, 0, 1], 0)));
        let addr = l.local_inet().expect("addr");
        let queued = TcpStream::connect(addr).expect("connect before the stop");
        l.stop_taking_new().expect("filter");
        // A new SYN is dropped: the connect neither succeeds nor is refused (it would be
        // retried a second later).
        let late = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(
            late.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::TimedOut),
            "a connect after the stop: {late:?}"
        );
        assert!(accept_within(&l, Duration::from_secs(2)).is_some(), "the queued connection was lost");
        drop(queued);
    }

    #[test]
    fn the_reuseport_choice_sends_every_new_connection_to_one_socket_until_given_back() {
        let first = reuseport_listener(&SocketAddr::from(([127, 0, 0, 1], 0)));
        let addr = first.local_inet().expect("addr");
        let second = reuseport_listener(&addr);
        let Listener::Tcp(t) = &first else { unreachable!() };
        sys::choose_in_reuseport_group(t, Some(1)).expect("choose");
        let clients: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).expect("connect")).collect();
        let on_second = (0..20).filter(|_| accept_within(&second, Duration::from_secs(1)).is_some()).count();
        assert_eq!(on_second, 20, "connections on the chosen socket");
        assert!(first.accept().is_err(), "a connection reached the other socket");
        sys::choose_in_reuseport_group(t, None).expect("give back");
        drop(clients);
    }
}
