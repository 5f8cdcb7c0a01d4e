//! UNIX stream sockets on both sides: a frontend bound to a path and to an abstract name,
//! a server reached through a socket path. Compared with HAProxy when it is installed.
mod common;

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use common::{free_port, need, start_haproxy, start_hapx, temp_dir};

/// A UNIX echo-with-tag server: answers `tag:` then what it read, then closes.
fn unix_server(path: &Path, tag: &'static str) {
    let listener = UnixListener::bind(path).expect("bind unix server");
    std::thread::spawn(move || {
        for conn in listener.incoming().take(16) {
            let Ok(mut c) = conn else { return };
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let _ = c.read_to_end(&mut buf);
            let _ = c.write_all(tag.as_bytes());
            let _ = c.write_all(&buf);
        }
    });
}

fn exchange(mut c: UnixStream) -> Vec<u8> {
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    c.write_all(b"ping").expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

fn run(program: &str) {
    let dir = temp_dir(&format!("unix-{program}"));
    let back = dir.join("back.sock");
    let front = dir.join("front.sock");
    let abstract_name = format!("hapx-test-{}-{program}", std::process::id());
    unix_server(&back, "pong:");
    // A TCP bind too, so that the start-up wait has a port to watch.
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n\
         frontend f\n    bind {}\n    bind abns@{abstract_name}\n    bind 127.0.0.1:{port}\n    default_backend b\n\
         backend b\n    server s1 {}\n",
        front.display(),
        back.display()
    );
    let _proxy = if program == "haproxy" { start_haproxy(&cfg, &[port]) } else { start_hapx(&cfg, &[port]) };
    let by_path = UnixStream::connect(&front).expect("connect to the path frontend");
    assert_eq!(exchange(by_path), b"pong:ping", "{program}: through the socket path");
    // HAProxy's abns@ names fill the whole address, padded with NUL bytes.
    let mut padded = abstract_name.clone().into_bytes();
    padded.resize(107, 0);
    let addr = UnixAddr::from_abstract_name(&padded).expect("abstract address");
    let by_name = UnixStream::connect_addr(&addr).expect("connect to the abstract frontend");
    assert_eq!(exchange(by_name), b"pong:ping", "{program}: through the abstract socket");
}

#[test]
fn unix_path_and_abstract_frontends_reach_a_unix_server() {
    run("hapx");
}

#[test]
fn haproxy_does_the_same_with_unix_sockets() {
    need("haproxy");
    run("haproxy");
}
