//! One client↔server session: its sockets, the two one-way pipes between them, and the
//! byte pumping with half-close. Buffers are held only while bytes are in flight.
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use super::conn::Conn;
use super::splice::{KernelPipe, PipePool, SpliceMode, AUTO_STREAK, PIPE_CHUNK};

/// A buffer with the bytes not yet written between `start` and `end`.
pub struct Buf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buf {
    fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// Buffers of one size, reused so that steady traffic allocates nothing.
pub struct BufPool {
    size: usize,
    free: Vec<Box<[u8]>>,
    /// How many buffers to keep around at most.
    keep: usize,
}

impl BufPool {
    pub fn new(size: usize, keep: usize) -> BufPool {
        BufPool { size, free: Vec::new(), keep }
    }

    fn take(&mut self) -> Buf {
        let data = self.free.pop().unwrap_or_else(|| vec![0u8; self.size].into_boxed_slice());
        Buf { data, start: 0, end: 0 }
    }

    fn give(&mut self, buf: Buf) {
        if self.free.len() < self.keep {
            self.free.push(buf.data);
        }
    }

    /// Buffers currently idle in the pool.
    pub fn idle(&self) -> usize {
        self.free.len()
    }
}

/// How a pump step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Nothing more can move now; wait for readiness.
    Idle,
    /// The byte budget ran out with more to move: call again soon.
    Budget,
    /// The source closed and everything was passed on, including the close.
    Done,
}

/// Which side failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// An I/O error on one side (reset, broken pipe...).
#[derive(Debug)]
pub struct PumpError {
    pub side: Side,
    pub error: io::Error,
}

/// What the poller last said about one socket, kept until a syscall shows it changed, so
/// that the pump never calls `read` or `write` only to hear EAGAIN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Bytes (or the end of stream) may be waiting to be read.
    pub readable: bool,
    /// There is room to write.
    pub writable: bool,
    /// The peer shut its side (RDHUP) or the socket hung up: read to the end even after a
    /// short read, since no further edge will come for that end.
    pub read_closed: bool,
}

impl Ready {
    /// A freshly connected socket: room to write, nothing known to read.
    pub fn connected() -> Ready {
        Ready { writable: true, ..Ready::default() }
    }

    /// Adds what an event reported.
    pub fn merge(&mut self, readable: bool, writable: bool, read_closed: bool) {
        self.readable |= readable || read_closed;
        self.writable |= writable;
        self.read_closed |= read_closed;
    }
}

/// One direction: bytes read from `src` are written to `dst`.
#[derive(Default)]
pub struct Pipe {
    buf: Option<Buf>,
    /// `src` reached its end (FIN).
    pub src_eof: bool,
    /// `dst` was told the end: its write side shut after the last byte, or its socket is
    /// about to be closed because the other direction is over too.
    pub dst_shut: bool,
    /// Bytes moved so far.
    pub bytes: u64,
    /// Last time bytes were read from `src`.
    pub last_read: Option<Instant>,
    /// Last time bytes were written to `dst`.
    pub last_write: Option<Instant>,
    /// Whether this direction may move bytes through a kernel pipe instead of `buf`.
    pub splice: SpliceMode,
    kernel: Option<KernelPipe>,
    /// Bytes in `kernel` not yet written to `dst`.
    in_kernel: usize,
    /// Consecutive reads that filled a whole buffer (`splice-auto`'s bulk detector).
    streak: u8,
}

/// The pools a pump draws from.
pub struct Pools<'a> {
    pub bufs: &'a mut BufPool,
    pub pipes: &'a mut PipePool,
}

/// What one write (or splice to `dst`) came to.
enum Wrote {
    Moved(usize),
    /// Interrupted: try again.
    Again,
    /// The pump returns this: Idle when the socket is full, or the error.
    Stop(Result<Flow, PumpError>),
}

fn wrote(result: io::Result<usize>, dst_ready: &mut Ready, side: Side) -> Wrote {
    match result {
        Ok(0) => Wrote::Stop(Err(PumpError { side, error: io::ErrorKind::WriteZero.into() })),
        Ok(n) => Wrote::Moved(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            dst_ready.writable = false;
            Wrote::Stop(Ok(Flow::Idle))
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Wrote::Again,
        Err(e) => Wrote::Stop(Err(PumpError { side, error: e })),
    }
}

/// The two sockets one pipe joins, with what is known of their readiness.
pub struct Ends<'a> {
    pub src: &'a mut Conn,
    pub src_ready: &'a mut Ready,
    pub dst: &'a mut Conn,
    pub dst_ready: &'a mut Ready,
    /// (src, dst), for errors.
    pub sides: (Side, Side),
    /// The other direction is over (its source ended and everything was passed on): at the
    /// end of this one the session closes both sockets, so no `shutdown` is needed.
    pub other_done: bool,
}

impl Pipe {
    /// A direction that may splice as `splice` says.
    pub fn new(splice: SpliceMode) -> Pipe {
        Pipe { splice, ..Pipe::default() }
    }

    /// Whether this pipe holds a buffer (bytes in flight).
    pub fn holds_buffer(&self) -> bool {
        self.buf.is_some()
    }

    /// Whether the source ended and everything, the end included, was passed on.
    pub fn is_done(&self) -> bool {
        self.src_eof && self.dst_shut && self.buf.is_none() && self.in_kernel == 0
    }

    /// Whether this direction splices now: it already holds a pipe, or its mode says so
    /// and a pipe is free (only between TCP sockets, with no buffered bytes left behind).
    fn splicing(&mut self, src: &Conn, dst: &Conn, pipes: &mut PipePool) -> bool {
        if self.kernel.is_some() {
            return true;
        }
        let wanted = match self.splice {
            SpliceMode::Never => false,
            SpliceMode::Always => true,
            SpliceMode::Auto => self.streak >= AUTO_STREAK,
        };
        if !wanted || self.buf.is_some() || !matches!((src, dst), (Conn::Tcp(_), Conn::Tcp(_))) {
            return false;
        }
        self.kernel = pipes.take();
        self.kernel.is_some()
    }

    /// Moves bytes from `src` to `dst` until one would block, the source ends, or `budget`
    /// bytes were read. Reads only a socket known readable and stops at a short read (the
    /// kernel's queue is then empty and the next bytes bring a new edge); writes only a
    /// socket known writable.
    pub fn pump(
        &mut self,
        ends: Ends<'_>,
        pools: Pools<'_>,
        mut budget: usize,
        now: Instant,
    ) -> Result<Flow, PumpError> {
        let Ends { src, src_ready, dst, dst_ready, sides, other_done } = ends;
        let Pools { bufs: pool, pipes } = pools;
        loop {
            // Write what is pending first, so the buffer can be reused or returned.
            if let Some(buf) = self.buf.as_mut() {
                while !buf.is_empty() {
                    if !dst_ready.writable {
                        return Ok(Flow::Idle);
                    }
                    match wrote(dst.write(buf.data.get(buf.start..buf.end).unwrap_or(&[])), dst_ready, sides.1) {
                        Wrote::Moved(n) => {
                            buf.start += n;
                            self.last_write = Some(now);
                        }
                        Wrote::Again => {}
                        Wrote::Stop(result) => return result,
                    }
                }
                if let Some(buf) = self.buf.take() {
                    pool.give(buf);
                }
            }
            if let Some(kernel) = self.kernel.as_ref() {
                while self.in_kernel > 0 {
                    if !dst_ready.writable {
                        return Ok(Flow::Idle);
                    }
                    match wrote(kernel.drain(dst, self.in_kernel), dst_ready, sides.1) {
                        Wrote::Moved(n) => {
                            self.in_kernel = self.in_kernel.saturating_sub(n);
                            self.last_write = Some(now);
                        }
                        Wrote::Again => {}
                        Wrote::Stop(result) => return result,
                    }
                }
            }
            if self.src_eof {
                if !self.dst_shut {
                    self.dst_shut = true;
                    if !other_done {
                        // The peer may already be gone; the close is passed on as far as it can.
                        let _ = dst.shutdown(Shutdown::Write);
                    }
                }
                return Ok(Flow::Done);
            }
            if budget == 0 {
                return Ok(Flow::Budget);
            }
            if !src_ready.readable {
                return Ok(Flow::Idle);
            }
            let want;
            let result = if self.splicing(src, dst, pipes) {
                let Some(kernel) = self.kernel.as_ref() else { continue };
                want = PIPE_CHUNK.min(budget.max(1));
                // The pipe is empty here: a short fill means the socket was drained.
                kernel.fill(src, want)
            } else {
                let mut buf = pool.take();
                want = buf.data.len().min(budget.max(1));
                let r = src.read(buf.data.get_mut(..want).unwrap_or(&mut []));
                match r {
                    Ok(n) if n > 0 => {
                        buf.end = n;
                        self.buf = Some(buf);
                        self.streak = if n == want { self.streak.saturating_add(1) } else { 0 };
                    }
                    _ => pool.give(buf),
                }
                r
            };
            match result {
                Ok(0) => {
                    self.src_eof = true;
                    src_ready.readable = false;
                }
                Ok(n) => {
                    if self.kernel.is_some() {
                        self.in_kernel = n;
                    }
                    self.bytes += n as u64;
                    self.last_read = Some(now);
                    budget = budget.saturating_sub(n);
                    if n < want && !src_ready.read_closed {
                        src_ready.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => src_ready.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PumpError { side: sides.0, error: e }),
            }
        }
    }

    /// Gives the buffer and the pipe back (the session is closing).
    pub fn release(&mut self, pools: Pools<'_>) {
        if let Some(buf) = self.buf.take() {
            pools.bufs.give(buf);
        }
        if let Some(kernel) = self.kernel.take() {
            pools.pipes.give(kernel, self.in_kernel == 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Duration;

    /// A connected pair: (the proxy's non-blocking end, the peer's blocking end).
    fn pair() -> (Conn, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (Conn::Tcp(mio::net::TcpStream::from_std(ours)), peer)
    }

    const ALL: Ready = Ready { readable: true, writable: true, read_closed: false };

    /// Pumps client → server until the pipe is done, as readiness events would: readable
    /// again after each pause. Bounded.
    fn run(pipe: &mut Pipe, src: &mut Conn, dst: &mut Conn, pools: (&mut BufPool, &mut PipePool)) -> Vec<Flow> {
        let (mut rs, mut rd) = (ALL, ALL);
        let mut flows = Vec::new();
        for _ in 0..10_000 {
            let ends = Ends {
                src,
                src_ready: &mut rs,
                dst,
                dst_ready: &mut rd,
                sides: (Side::Client, Side::Server),
                other_done: false,
            };
            let flow = pipe.pump(ends, Pools { bufs: pools.0, pipes: pools.1 }, 256 * 1024, Instant::now()).unwrap();
            flows.push(flow);
            if flow == Flow::Done {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
            (rs, rd) = (ALL, ALL);
        }
        flows
    }

    fn transfer(mode: SpliceMode, len: usize) -> (Vec<u8>, Pipe, usize) {
        let (mut from_client, mut client) = pair();
        let (mut to_server, mut server) = pair();
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            client.write_all(&sent).unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
            client
        });
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            server.read_to_end(&mut got).unwrap();
            got
        });
        let (mut bufs, mut pipes) = (BufPool::new(16384, 4), PipePool::new(4));
        let mut pipe = Pipe::new(mode);
        run(&mut pipe, &mut from_client, &mut to_server, (&mut bufs, &mut pipes));
        let spliced = pipes.in_use();
        drop(to_server);
        let _client = writer.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes differ");
        (got, pipe, spliced)
    }

    #[test]
    fn the_pump_passes_every_byte_and_the_end_of_stream() {
        let (_, pipe, spliced) = transfer(SpliceMode::Never, 3 * 1024 * 1024 + 17);
        assert!(pipe.is_done() && pipe.src_eof && pipe.dst_shut);
        assert_eq!(pipe.bytes, 3 * 1024 * 1024 + 17);
        assert_eq!(spliced, 0);
    }

    #[test]
    fn splice_always_moves_bytes_through_a_kernel_pipe() {
        let (_, pipe, spliced) = transfer(SpliceMode::Always, 2 * 1024 * 1024 + 5);
        assert!(pipe.is_done());
        assert_eq!(spliced, 1, "the direction held a pipe");
    }

    #[test]
    fn splice_auto_takes_a_pipe_for_bulk_only() {
        let (_, _, spliced) = transfer(SpliceMode::Auto, 4 * 1024 * 1024);
        assert_eq!(spliced, 1, "a bulk flow switches to splicing");
        let (_, _, spliced) = transfer(SpliceMode::Auto, 300);
        assert_eq!(spliced, 0, "a small message keeps the buffer path");
    }

    #[test]
    fn a_short_read_clears_readable_and_a_full_socket_clears_writable() {
        let (mut src, mut client) = pair();
        let (mut dst, _server) = pair();
        client.write_all(b"mqtt").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let (mut rs, mut rd) = (ALL, ALL);
        let mut bufs = BufPool::new(16384, 4);
        let mut pipes = PipePool::new(0);
        let mut pipe = Pipe::default();
        let ends = Ends {
            src: &mut src,
            src_ready: &mut rs,
            dst: &mut dst,
            dst_ready: &mut rd,
            sides: (Side::Client, Side::Server),
            other_done: false,
        };
        let flow = pipe.pump(ends, Pools { bufs: &mut bufs, pipes: &mut pipes }, 1 << 20, Instant::now()).unwrap();
        assert_eq!((flow, rs.readable, pipe.bytes), (Flow::Idle, false, 4), "no read after the short one");
        // The server never reads: writes fill its socket until the kernel says EAGAIN.
        let big = vec![0u8; 64 << 20];
        let writer = std::thread::spawn(move || {
            let _ = client.write_all(&big);
            client
        });
        let mut blocked = false;
        for _ in 0..2000 {
            let mut rs = ALL;
            let ends = Ends {
                src: &mut src,
                src_ready: &mut rs,
                dst: &mut dst,
                dst_ready: &mut rd,
                sides: (Side::Client, Side::Server),
                other_done: false,
            };
            pipe.pump(ends, Pools { bufs: &mut bufs, pipes: &mut pipes }, 1 << 20, Instant::now()).unwrap();
            if !rd.writable {
                blocked = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(blocked && pipe.holds_buffer(), "writes stop at EAGAIN and keep their bytes");
        drop(src);
        drop(writer);
    }
}
