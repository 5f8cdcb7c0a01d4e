//! hapx forwards TCP byte for byte: bulk random data both ways with half-closes, the tail
//! of a stream written just before the close, server-first closes and resets.
mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn listen_cfg(port: u16, server_port: u16) -> String {
    format!("{DEFAULTS}listen fwd\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{server_port}\n")
}

/// Sends `total` random bytes in random chunks and shuts the write side; meanwhile reads
/// the echo until EOF. Returns (sent, received) as (length, checksum).
fn echo_session(port: u16, seed: u64, total: u64) -> ((u64, u64), (u64, u64)) {
    let mut s = connect(port, Duration::from_secs(20));
    let mut reader = s.try_clone().expect("clone");
    let rx = thread::spawn(move || {
        let mut rng = Rng::new(seed ^ 0x5EED);
        let mut sum = Sum::default();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let want = rng.range(1, buf.len());
            match reader.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(k) => sum.update(&buf[..k]),
                Err(e) => panic!("echo read after {} bytes: {e}", sum.len),
            }
        }
        sum.finish()
    });
    let mut rng = Rng::new(seed);
    let mut sum = Sum::default();
    let mut buf = vec![0u8; 512 * 1024];
    let mut left = total;
    while left > 0 {
        let n = rng.range(1, buf.len()).min(left as usize);
        rng.fill(&mut buf[..n]);
        s.write_all(&buf[..n]).expect("write");
        sum.update(&buf[..n]);
        left -= n as u64;
    }
    s.shutdown(Shutdown::Write).expect("shutdown write");
    (sum.finish(), rx.join().expect("reader thread"))
}

#[test]
fn one_gib_of_random_bytes_is_echoed_exactly_through_hapx() {
    let echo = Server::start(echo_handler);
    let port = free_port();
    let _hapx = start_hapx(&listen_cfg(port, echo.port), &[port]);
    const CONNS: u64 = 8;
    // 1 GiB sent by the clients and 1 GiB echoed back.
    const PER_CONN: u64 = (1 << 30) / CONNS;
    let started = Instant::now();
    let handles: Vec<_> =
        (0..CONNS).map(|i| thread::spawn(move || echo_session(port, 1000 + i, PER_CONN + i * 7919))).collect();
    for (i, h) in handles.into_iter().enumerate() {
        let (sent, got) = h.join().expect("session thread");
        assert_eq!(sent.0, PER_CONN + i as u64 * 7919);
        assert_eq!(got, sent, "connection {i}: echoed stream differs from the sent one (length, checksum)");
    }
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    wait_until(Duration::from_secs(5), || echo.open() == 0);
}

/// A client writes `size` bytes and closes at once; the server must get every byte.
fn tail_case(size: usize, drop_only: bool) {
    let (sink, rx) = sink_server();
    let port = free_port();
    let _hapx = start_hapx(&listen_cfg(port, sink.port), &[port]);
    let mut data = vec![0u8; size];
    Rng::new(size as u64).fill(&mut data);
    let mut s = connect(port, Duration::from_secs(10));
    s.write_all(&data).expect("write");
    if !drop_only {
        s.shutdown(Shutdown::Both).expect("shutdown");
    }
    drop(s);
    let got = rx.recv_timeout(Duration::from_secs(10)).expect("the server saw no end of stream");
    assert_eq!(got, sum_of(&data), "size {size}: server got (length, checksum) {got:?}");
}

#[test]
fn tail_100_bytes_written_then_closed_arrives_whole() {
    tail_case(100, false);
    tail_case(100, true);
}

#[test]
fn tail_16k_written_then_closed_arrives_whole() {
    tail_case(16 << 10, false);
    tail_case(16 << 10, true);
}

#[test]
fn tail_100k_written_then_closed_arrives_whole() {
    tail_case(100 << 10, false);
    tail_case(100 << 10, true);
}

#[test]
fn tail_8m_written_then_closed_arrives_whole() {
    tail_case(8 << 20, false);
    tail_case(8 << 20, true);
}

#[test]
fn several_tails_at_once_arrive_whole() {
    let (sink, rx) = sink_server();
    let port = free_port();
    let _hapx = start_hapx(&listen_cfg(port, sink.port), &[port]);
    let sizes = [100usize, 16 << 10, 100 << 10, 1 << 20, 8 << 20, 3, 65537, 12345];
    let mut expected: Vec<(u64, u64)> = Vec::new();
    let hs: Vec<_> = sizes
        .iter()
        .map(|&size| {
            let mut data = vec![0u8; size];
            Rng::new(7 + size as u64).fill(&mut data);
            expected.push(sum_of(&data));
            thread::spawn(move || {
                let mut s = connect(port, Duration::from_secs(10));
                s.write_all(&data).expect("write");
            })
        })
        .collect();
    for h in hs {
        h.join().expect("client");
    }
    let mut got = Vec::new();
    for _ in &sizes {
        got.push(rx.recv_timeout(Duration::from_secs(10)).expect("a stream did not end"));
    }
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn server_closing_first_delivers_everything_then_eof() {
    for size in [0usize, 100, 16 << 10, 4 << 20] {
        let mut data = vec![0u8; size];
        Rng::new(size as u64 + 1).fill(&mut data);
        let payload = data.clone();
        let srv = Server::start(move |mut s, _| {
            let _ = s.write_all(&payload);
            // Closes both ways at once; the client has sent nothing, so this is a FIN.
        });
        let port = free_port();
        let _hapx = start_hapx(&listen_cfg(port, srv.port), &[port]);
        let mut c = connect(port, Duration::from_secs(10));
        match read_to_end(&mut c) {
            End::Eof(got) => assert_eq!(sum_of(&got), sum_of(&data), "size {size}"),
            other => {
                panic!("size {size}: expected data then EOF, got {:?} after {} bytes", kind(&other), other.data().len())
            }
        }
    }
}

#[test]
fn server_half_close_still_lets_the_client_send() {
    // The server sends a greeting and shuts its write side, then reads the client's request.
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let srv = Server::start(move |mut s, _| {
        let _ = s.write_all(b"hello\n");
        let _ = s.shutdown(Shutdown::Write);
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        let _ = tx.lock().map(|t| t.send(got));
    });
    let port = free_port();
    let _hapx = start_hapx(&listen_cfg(port, srv.port), &[port]);
    let mut c = connect(port, Duration::from_secs(10));
    let mut greet = Vec::new();
    c.read_to_end(&mut greet).expect("greeting then EOF");
    assert_eq!(greet, b"hello\n");
    c.write_all(b"after the server's FIN\n").expect("write after EOF");
    c.shutdown(Shutdown::Write).expect("shutdown");
    let got = rx.recv_timeout(Duration::from_secs(10)).expect("server end");
    assert_eq!(got, b"after the server's FIN\n");
}

fn kind(e: &End) -> &'static str {
    match e {
        End::Eof(_) => "EOF",
        End::Reset(_) => "reset",
        End::Timeout(_) => "timeout (still open)",
    }
}

#[test]
fn server_reset_closes_the_client_side() {
    // The server leaves the client's bytes unread and closes: the kernel sends a RST.
    let srv = Server::start(|s, _| {
        let mut buf = [0u8; 1];
        let _ = s.peek(&mut buf);
        thread::sleep(Duration::from_millis(50));
        drop(s);
    });
    let port = free_port();
    let _hapx = start_hapx(&listen_cfg(port, srv.port), &[port]);
    let mut c = connect(port, Duration::from_secs(5));
    c.write_all(b"some bytes the server never reads").expect("write");
    let started = Instant::now();
    let end = read_to_end(&mut c);
    assert!(end.closed(), "the client side is still open 5 s after the server's reset");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn client_reset_closes_the_server_side() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let srv = Server::start(move |mut s, _| {
        let _ = s.write_all(b"data the client will not read");
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break true,
                Ok(_) => {}
            }
            if started.elapsed() > Duration::from_secs(5) {
                break false;
            }
        };
        let _ = tx.lock().map(|t| t.send((closed, started.elapsed())));
    });
    let port = free_port();
    let _hapx = start_hapx(&listen_cfg(port, srv.port), &[port]);
    let c = connect(port, Duration::from_secs(5));
    let mut b = [0u8; 1];
    // Wait for the server's bytes, then close with them unread: a RST.
    c.peek(&mut b).expect("server bytes");
    drop(c);
    let (closed, after) = rx.recv_timeout(Duration::from_secs(10)).expect("server thread");
    assert!(closed && after < Duration::from_secs(3), "server side not closed after the client's reset ({after:?})");
}

/// Spliced directions (`splice-auto`, and `splice-request` + `splice-response`) deliver the
/// same bytes, half-close included, and a tail written just before the close.
#[test]
fn spliced_streams_are_echoed_exactly_with_their_tails() {
    for options in ["    option splice-auto\n", "    option splice-request\n    option splice-response\n"] {
        let echo = Server::start(echo_handler);
        let port = free_port();
        let cfg = format!("{}{options}", listen_cfg(port, echo.port));
        let hapx = start_hapx(&cfg, &[port]);
        const CONNS: u64 = 4;
        const PER_CONN: u64 = (64 << 20) / CONNS;
        let handles: Vec<_> =
            (0..CONNS).map(|i| thread::spawn(move || echo_session(port, 77 + i, PER_CONN + i * 131))).collect();
        for (i, h) in handles.into_iter().enumerate() {
            let (sent, got) = h.join().expect("session thread");
            assert_eq!(got, sent, "{options}: connection {i}: echoed stream differs (length, checksum)");
        }
        wait_until(Duration::from_secs(5), || echo.open() == 0);
        drop(hapx);
        let (sink, rx) = sink_server();
        let port = free_port();
        let _hapx = start_hapx(&format!("{}{options}", listen_cfg(port, sink.port)), &[port]);
        let mut data = vec![0u8; 8 << 20];
        Rng::new(9).fill(&mut data);
        let mut s = connect(port, Duration::from_secs(10));
        s.write_all(&data).expect("write");
        drop(s);
        let got = rx.recv_timeout(Duration::from_secs(10)).expect("the server saw no end of stream");
        assert_eq!(got, sum_of(&data), "{options}: the server got (length, checksum) {got:?}");
    }
}

/// `server ... source <addr>`: connections to the server leave from that address.
#[test]
fn server_source_address_is_the_one_the_server_sees() {
    let backend = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = free_port();
    let cfg = format!(
        "{DEFAULTS}listen src\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{} source 127.0.0.7\n",
        backend.local_addr().expect("addr").port()
    );
    let _hapx = start_hapx(&cfg, &[port]);
    let mut c = connect(port, Duration::from_secs(5));
    c.write_all(b"x").expect("write");
    backend.set_nonblocking(true).expect("nonblocking");
    let mut peer = None;
    wait_until(Duration::from_secs(5), || {
        peer = backend.accept().ok().map(|(_, a)| a);
        peer.is_some()
    });
    assert_eq!(peer.map(|a| a.ip().to_string()), Some("127.0.0.7".to_string()));
}
