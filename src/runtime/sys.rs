//! The only unsafe code: sockets options std does not expose, rlimits, signals, fork.
//! Every block states why it is sound.
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The raw sockaddr for `addr`, as the kernel wants it.
fn raw_addr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(storage).cast::<libc::sockaddr_in>(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(storage).cast::<libc::sockaddr_in6>(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn set_int_opt(fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: fd is a socket we own; the option value is a c_int that outlives the call.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::addr_of!(value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Options of a listening socket.
#[derive(Clone, Debug, Default)]
pub struct ListenOpts {
    pub reuseport: bool,
    /// `interface NAME`: accept only what arrives on that interface (SO_BINDTODEVICE).
    pub interface: Option<String>,
    /// For IPv6 sockets: accept only IPv6 (`v6only`) or both (`v4v6`); None: the system's.
    pub v6only: Option<bool>,
    pub backlog: i32,
}

/// A non-blocking listening TCP socket bound to `addr`.
pub fn tcp_listener(addr: &SocketAddr, opts: ListenOpts) -> io::Result<std::net::TcpListener> {
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = check(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if opts.reuseport {
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    if let (Some(v6only), false) = (opts.v6only, addr.is_ipv4()) {
        set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, i32::from(v6only))?;
    }
    if let Some(name) = &opts.interface {
        let c = std::ffi::CString::new(name.as_str()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let bytes = c.as_bytes_with_nul();
        // SAFETY: fd is our socket; the name buffer outlives the call and its length is passed.
        check(unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                bytes.as_ptr().cast(),
                bytes.len() as libc::socklen_t,
            )
        })?;
    }
    let (storage, len) = raw_addr(addr);
    // SAFETY: storage holds a valid sockaddr of length len for this family.
    check(unsafe { libc::bind(fd, std::ptr::addr_of!(storage).cast(), len) })?;
    let backlog = if opts.backlog > 0 { opts.backlog } else { 1024 };
    // SAFETY: fd is a bound stream socket.
    check(unsafe { libc::listen(fd, backlog) })?;
    Ok(std::net::TcpListener::from(owned))
}

/// The soft and hard limits on open files.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: lim is a valid, writable rlimit.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Raises (or sets) the open-file limit, as `ulimit-n` asks.
pub fn set_nofile_limit(n: u64) -> io::Result<()> {
    let (_, hard) = nofile_limit()?;
    let lim = libc::rlimit { rlim_cur: n, rlim_max: hard.max(n) };
    // SAFETY: lim is a valid rlimit value.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }).map(|_| ())
}

/// Signals received, as a bit set; read and cleared by the event loops.
static PENDING_SIGNALS: AtomicUsize = AtomicUsize::new(0);

pub const SIG_SOFT_STOP: usize = 1; // SIGUSR1
pub const SIG_HARD_STOP: usize = 2; // SIGTERM, SIGINT
pub const SIG_PAUSE: usize = 4; // SIGTTOU
pub const SIG_RESUME: usize = 8; // SIGTTIN

extern "C" fn on_signal(sig: libc::c_int) {
    let bit = match sig {
        libc::SIGUSR1 => SIG_SOFT_STOP,
        libc::SIGTERM | libc::SIGINT => {
            LAST_HARD_SIGNAL.store(sig, Ordering::SeqCst);
            SIG_HARD_STOP
        }
        libc::SIGTTOU => SIG_PAUSE,
        libc::SIGTTIN => SIG_RESUME,
        _ => 0,
    };
    // An atomic store is async-signal-safe.
    PENDING_SIGNALS.fetch_or(bit, Ordering::SeqCst);
    wake_supervisor();
}

/// The write end of the supervisor's self-pipe (-1 before it exists): a signal or an ended
/// thread writes a byte there, so the supervisor sleeps until something happens instead of
/// polling a flag.
static WAKE_WRITE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
static WAKE_READ: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Wakes `wait_for_wake` (async-signal-safe: one write(2) on a non-blocking pipe).
pub fn wake_supervisor() {
    let fd = WAKE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) of one byte from a live local to a descriptor this module opened
        // and never closes; a full pipe (EAGAIN) already means a wake-up is pending.
        let _ = unsafe { libc::write(fd, std::ptr::addr_of!(byte).cast(), 1) };
    }
}

/// Sleeps until `wake_supervisor` is called or `timeout` passes (None: no limit).
pub fn wait_for_wake(timeout: Option<std::time::Duration>) {
    let fd = WAKE_READ.load(Ordering::SeqCst);
    if fd < 0 {
        std::thread::sleep(timeout.unwrap_or(std::time::Duration::from_millis(50)));
        return;
    }
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: poll(2) on one pollfd that lives for the call.
    let _ = unsafe { libc::poll(&mut pfd, 1, ms) };
    let mut sink = [0u8; 64];
    // SAFETY: read(2) into a local buffer of the length given; the pipe is non-blocking.
    while unsafe { libc::read(fd, sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
}

/// Routes HAProxy's control signals to `take_signals`; SIGPIPE is ignored.
pub fn install_signal_handlers() -> io::Result<()> {
    if WAKE_READ.load(Ordering::SeqCst) < 0 {
        let (read, write) = pipe()?;
        use std::os::fd::IntoRawFd;
        // Kept open for the life of the process (the handler may write at any time).
        WAKE_READ.store(read.into_raw_fd(), Ordering::SeqCst);
        WAKE_WRITE.store(write.into_raw_fd(), Ordering::SeqCst);
    }
    for sig in [libc::SIGUSR1, libc::SIGTERM, libc::SIGINT, libc::SIGTTOU, libc::SIGTTIN] {
        // SAFETY: on_signal only performs an atomic operation and a write(2), both
        // async-signal-safe.
        if unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: ignoring SIGPIPE installs no handler code.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The signals received since the last call.
pub fn take_signals() -> usize {
    PENDING_SIGNALS.swap(0, Ordering::SeqCst)
}

/// Detaches into the background as `-D`/`daemon` asks: fork, the parent exits, the child
/// starts a new session. Returns in the child only.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: called before any thread is started, so the child is a faithful copy.
    let pid = check(unsafe { libc::fork() })?;
    if pid > 0 {
        std::process::exit(0);
    }
    // SAFETY: plain setsid(2) in the child.
    check(unsafe { libc::setsid() })?;
    Ok(())
}

/// Drops privileges after binding, in HAProxy's order: chroot, then gid, then uid.
pub fn drop_privileges(chroot: Option<&str>, gid: Option<u32>, uid: Option<u32>) -> io::Result<()> {
    if let Some(dir) = chroot {
        let c = std::ffi::CString::new(dir).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: c is a valid NUL-terminated path.
        check(unsafe { libc::chroot(c.as_ptr()) })?;
        std::env::set_current_dir("/")?;
    }
    if let Some(g) = gid {
        // SAFETY: plain setgroups/setgid calls with valid arguments.
        check(unsafe { libc::setgroups(0, std::ptr::null()) })?;
        // SAFETY: as above.
        check(unsafe { libc::setgid(g) })?;
    }
    if let Some(u) = uid {
        // SAFETY: plain setuid call.
        check(unsafe { libc::setuid(u) })?;
    }
    Ok(())
}

/// Turns TCP keep-alive on for a connected socket (`option tcpka`, `clitcpka`, `srvtcpka`).
pub fn set_keepalive(socket: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    set_int_opt(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
}

/// A non-blocking TCP connection to `to` from the local address `from` (the server's
/// `source`): bound first, then connecting (EINPROGRESS is the normal answer).
pub fn tcp_connect_from(from: &SocketAddr, to: &SocketAddr) -> io::Result<std::net::TcpStream> {
    let family = if to.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = check(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    let (src, src_len) = raw_addr(from);
    // SAFETY: src holds a valid sockaddr of length src_len.
    check(unsafe { libc::bind(fd, std::ptr::addr_of!(src).cast(), src_len) })?;
    let (dst, dst_len) = raw_addr(to);
    // SAFETY: dst holds a valid sockaddr of length dst_len.
    let ret = unsafe { libc::connect(fd, std::ptr::addr_of!(dst).cast(), dst_len) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(std::net::TcpStream::from(owned))
}

/// Sends `-sf` (soft stop, SIGUSR1) or `-st` (SIGTERM) to an old process, once the new one
/// has bound its listeners (SO_REUSEPORT lets both hold them meanwhile).
pub fn signal_old_process(pid: i32, hard: bool) -> io::Result<()> {
    let sig = if hard { libc::SIGTERM } else { libc::SIGUSR1 };
    // SAFETY: kill(2) with a caller-given pid and a valid signal number.
    check(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

/// Stops a listening socket from accepting (new connections are refused), as HAProxy pauses
/// listeners on SIGTTOU: on Linux, shutting a listening socket down stops the listen.
pub fn pause_listener(socket: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    // SAFETY: shutdown(2) on a socket we own.
    check(unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_RD) }).map(|_| ())
}

/// Listens again on a paused socket (SIGTTIN).
pub fn resume_listener(socket: &impl std::os::fd::AsRawFd, backlog: i32) -> io::Result<()> {
    let backlog = if backlog > 0 { backlog } else { 1024 };
    // SAFETY: listen(2) on a bound socket we own.
    check(unsafe { libc::listen(socket.as_raw_fd(), backlog) }).map(|_| ())
}

/// Makes a listening TCP socket drop every new connection request (a segment with SYN set
/// and ACK clear) while the handshakes already under way (their final ACK) still complete into
/// the accept queue: a classic BPF socket filter, which needs no privilege.
///
/// This is the first step of a soft stop beside a new process in the same SO_REUSEPORT group:
/// the kernel keeps choosing this socket for some new connections until it is closed, and
/// closing it resets what its queues hold (unless `net.ipv4.tcp_migrate_req` is set). With
/// the filter, what the kernel chose for this socket is a dropped SYN, which the client sends
/// again a second later, when this socket is closed and the group has only the new process's
/// sockets left. This is HAProxy's documented way of losing nothing on a reload (block SYNs
/// during the reload and let clients retransmit), applied to the one socket that leaves.
pub fn drop_new_handshakes(socket: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    // The filter sees the segment from its TCP header on: byte 13 holds the flags.
    const FLAGS_OFFSET: u32 = 13;
    const SYN: u32 = 0x02;
    const ACK: u32 = 0x10;
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter { code: code as u16, jt, jf, k };
    let program = [
        op(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, FLAGS_OFFSET),
        op(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, 0, 0, SYN | ACK),
        // SYN without ACK: to the drop below; anything else: skip it.
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, SYN),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
    ];
    let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
    // SAFETY: the socket is ours; fprog points to `program`, which outlives the call (the
    // kernel copies the instructions), and its length is the array's.
    check(unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            std::ptr::addr_of!(fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// SO_ATTACH_REUSEPORT_CBPF, which the libc crate names on Android only (asm-generic value).
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64"
))]
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// Chooses the socket of `socket`'s SO_REUSEPORT group that gets every new connection:
/// `Some(i)`, the `i`-th one in the group (sockets join at the end; a leaving one's place goes
/// to the last), or `None`, the kernel's own choice by hash again. A classic BPF program that
/// returns the index, attached to the group (no privilege needed); an index past the end of
/// the group means the kernel's choice as well.
pub fn choose_in_reuseport_group(socket: &impl std::os::fd::AsRawFd, index: Option<u32>) -> io::Result<()> {
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64"
    ))]
    {
        let program = [libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: index.unwrap_or(u32::MAX),
        }];
        let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
        // SAFETY: the socket is ours; fprog points to `program`, which outlives the call (the
        // kernel copies the instructions), and its length is the array's.
        check(unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ATTACH_REUSEPORT_CBPF,
                std::ptr::addr_of!(fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        })
        .map(|_| ())
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64"
    )))]
    {
        let _ = (socket, index);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Which hard-stop signal arrived last (SIGTERM or SIGINT), so that the process can end the
/// way HAProxy's does: killed by that signal.
static LAST_HARD_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

pub fn last_hard_signal() -> i32 {
    LAST_HARD_SIGNAL.load(Ordering::SeqCst)
}

/// Ends the process by `sig` with its default action (the exit status a shell shows as
/// 128 + sig), as HAProxy ends on SIGTERM or SIGINT.
pub fn die_of(sig: i32) -> ! {
    // SAFETY: restoring the default action and raising a signal; no handler code runs.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}

/// A non-blocking pipe for splice(2): (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given, which has room for two.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Moves up to `len` bytes from `from` to `to` inside the kernel, one of them a pipe;
/// never blocks (EAGAIN comes back as WouldBlock).
pub fn splice(from: &impl std::os::fd::AsRawFd, to: &impl std::os::fd::AsRawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: both descriptors are open and owned by the caller for the call's length; null
    // offsets mean "the current position", as pipes and sockets require.
    let n = unsafe {
        libc::splice(from.as_raw_fd(), std::ptr::null_mut(), to.as_raw_fd(), std::ptr::null_mut(), len, flags)
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
