//! One client↔server session: its sockets, the two one-way pipes between them, and the
//! byte pumping with half-close. Buffers are held only while bytes are in flight.
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use super::conn::Conn;

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
    /// Whether this pipe holds a buffer (bytes in flight).
    pub fn holds_buffer(&self) -> bool {
        self.buf.is_some()
    }

    /// Whether the source ended and everything, the end included, was passed on.
    pub fn is_done(&self) -> bool {
        self.src_eof && self.dst_shut && self.buf.is_none()
    }

    /// Moves bytes from `src` to `dst` until one would block, the source ends, or `budget`
    /// bytes were read. Reads only a socket known readable and stops at a short read (the
    /// kernel's queue is then empty and the next bytes bring a new edge); writes only a
    /// socket known writable.
    pub fn pump(
        &mut self,
        ends: Ends<'_>,
        pool: &mut BufPool,
        mut budget: usize,
        now: Instant,
    ) -> Result<Flow, PumpError> {
        let Ends { src, src_ready, dst, dst_ready, sides, other_done } = ends;
        loop {
            // Write what is pending first, so the buffer can be reused or returned.
            if let Some(buf) = self.buf.as_mut() {
                while !buf.is_empty() {
                    if !dst_ready.writable {
                        return Ok(Flow::Idle);
                    }
                    match dst.write(buf.data.get(buf.start..buf.end).unwrap_or(&[])) {
                        Ok(0) => return Err(PumpError { side: sides.1, error: io::ErrorKind::WriteZero.into() }),
                        Ok(n) => {
                            buf.start += n;
                            self.last_write = Some(now);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            dst_ready.writable = false;
                            return Ok(Flow::Idle);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(PumpError { side: sides.1, error: e }),
                    }
                }
                if let Some(buf) = self.buf.take() {
                    pool.give(buf);
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
            let mut buf = pool.take();
            let want = buf.data.len().min(budget.max(1));
            match src.read(buf.data.get_mut(..want).unwrap_or(&mut [])) {
                Ok(0) => {
                    pool.give(buf);
                    self.src_eof = true;
                    src_ready.readable = false;
                }
                Ok(n) => {
                    buf.end = n;
                    self.bytes += n as u64;
                    self.last_read = Some(now);
                    budget = budget.saturating_sub(n);
                    self.buf = Some(buf);
                    if n < want && !src_ready.read_closed {
                        src_ready.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    pool.give(buf);
                    src_ready.readable = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => pool.give(buf),
                Err(e) => {
                    pool.give(buf);
                    return Err(PumpError { side: sides.0, error: e });
                }
            }
        }
    }

    /// Gives the buffer back (the session is closing).
    pub fn release(&mut self, pool: &mut BufPool) {
        if let Some(buf) = self.buf.take() {
            pool.give(buf);
        }
    }
}
