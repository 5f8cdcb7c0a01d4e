//! Kernel splicing for bulk flows (`option splice-auto|splice-request|splice-response`):
//! bytes go socket → pipe → socket without being copied to user space. Pipes come from a
//! bounded pool (`maxpipes`); a flow that cannot get one keeps using a buffer.
use std::io;
use std::os::fd::OwnedFd;

use super::sys;

/// How a direction may splice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpliceMode {
    #[default]
    Never,
    /// `splice-auto`: once the flow fills whole buffers read after read (a bulk transfer);
    /// small MQTT packets never do, so they keep the buffer path and its latency.
    Auto,
    /// `splice-request` / `splice-response`: from the first byte.
    Always,
}

/// Consecutive full-buffer reads after which `splice-auto` switches a flow to splicing.
pub const AUTO_STREAK: u8 = 2;

/// Bytes moved per splice call at most (a default pipe holds 64 KiB).
pub const PIPE_CHUNK: usize = 64 * 1024;

/// A kernel pipe and the bytes it holds.
pub struct KernelPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl KernelPipe {
    /// Source socket → pipe.
    pub fn fill(&self, src: &impl std::os::fd::AsRawFd, len: usize) -> io::Result<usize> {
        sys::splice(src, &self.write, len)
    }

    /// Pipe → destination socket.
    pub fn drain(&self, dst: &impl std::os::fd::AsRawFd, len: usize) -> io::Result<usize> {
        sys::splice(&self.read, dst, len)
    }
}

/// Pipes of one thread, reused; `max` bounds how many exist at once.
pub struct PipePool {
    free: Vec<KernelPipe>,
    in_use: usize,
    max: usize,
}

impl PipePool {
    pub fn new(max: usize) -> PipePool {
        PipePool { free: Vec::new(), in_use: 0, max }
    }

    /// A pipe, or None when the limit is reached or the kernel refuses one.
    pub fn take(&mut self) -> Option<KernelPipe> {
        if self.in_use >= self.max {
            return None;
        }
        let pipe = match self.free.pop() {
            Some(p) => p,
            None => {
                let (read, write) = sys::pipe().ok()?;
                KernelPipe { read, write }
            }
        };
        self.in_use += 1;
        Some(pipe)
    }

    /// Gives a pipe back; one still holding bytes is closed instead (they belong to a dead
    /// session).
    pub fn give(&mut self, pipe: KernelPipe, empty: bool) {
        self.in_use = self.in_use.saturating_sub(1);
        if empty && self.free.len() < 64 {
            self.free.push(pipe);
        }
    }

    pub fn in_use(&self) -> usize {
        self.in_use
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn bytes_cross_a_pipe_between_two_sockets() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l2.local_addr().unwrap()).unwrap();
        let (mut d, _) = l2.accept().unwrap();
        let mut pool = PipePool::new(1);
        let pipe = pool.take().unwrap();
        assert!(pool.take().is_none(), "maxpipes bounds the pool");
        a.write_all(b"hello through the kernel").unwrap();
        let mut moved = 0;
        for _ in 0..100 {
            match pipe.fill(&b, PIPE_CHUNK) {
                Ok(n) => moved += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if moved == 24 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(pipe.drain(&c, moved).unwrap(), 24);
        let mut got = [0u8; 24];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello through the kernel");
        pool.give(pipe, true);
        assert_eq!(pool.in_use(), 0);
        assert!(pool.take().is_some());
    }
}
