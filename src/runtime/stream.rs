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

/// One direction: bytes read from `src` are written to `dst`.
#[derive(Default)]
pub struct Pipe {
    buf: Option<Buf>,
    /// `src` reached its end (FIN).
    pub src_eof: bool,
    /// `dst`'s write side was shut after the last byte.
    pub dst_shut: bool,
    /// Bytes moved so far.
    pub bytes: u64,
    /// Last time bytes were read from `src`.
    pub last_read: Option<Instant>,
    /// Last time bytes were written to `dst`.
    pub last_write: Option<Instant>,
}

impl Pipe {
    /// Whether this pipe holds a buffer (bytes in flight).
    pub fn holds_buffer(&self) -> bool {
        self.buf.is_some()
    }

    /// Moves bytes from `src` to `dst` until both would block, the source ends, or `budget`
    /// bytes were read. `sides` names (src, dst) for errors.
    pub fn pump(
        &mut self,
        src: &mut Conn,
        dst: &mut Conn,
        pool: &mut BufPool,
        mut budget: usize,
        sides: (Side, Side),
        now: Instant,
    ) -> Result<Flow, PumpError> {
        loop {
            // Write what is pending first, so the buffer can be reused or returned.
            if let Some(buf) = self.buf.as_mut() {
                while !buf.is_empty() {
                    match dst.write(buf.data.get(buf.start..buf.end).unwrap_or(&[])) {
                        Ok(0) => return Err(PumpError { side: sides.1, error: io::ErrorKind::WriteZero.into() }),
                        Ok(n) => {
                            buf.start += n;
                            self.last_write = Some(now);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flow::Idle),
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
                    // The peer may already be gone; the close is passed on as far as it can.
                    let _ = dst.shutdown(Shutdown::Write);
                }
                return Ok(Flow::Done);
            }
            if budget == 0 {
                return Ok(Flow::Budget);
            }
            let mut buf = pool.take();
            let want = buf.data.len().min(budget.max(1));
            match src.read(buf.data.get_mut(..want).unwrap_or(&mut [])) {
                Ok(0) => {
                    pool.give(buf);
                    self.src_eof = true;
                }
                Ok(n) => {
                    buf.end = n;
                    self.bytes += n as u64;
                    self.last_read = Some(now);
                    budget = budget.saturating_sub(n);
                    self.buf = Some(buf);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    pool.give(buf);
                    return Ok(Flow::Idle);
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
