//! Accepted connections go to the least loaded event-loop thread, as HAProxy's listeners
//! hand them over: a few long, heavy flows are not left sharing one thread while others idle,
//! whatever the kernel's SO_REUSEPORT hash chose.
mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const THREADS: usize = 4;

/// CPU ticks of each event-loop thread (`hapx-N`) of `pid`, by thread name.
fn loop_thread_ticks(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task").flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_string();
        if !name.starts_with("hapx-") {
            continue;
        }
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
        out.push((name, ticks));
    }
    out.sort();
    out
}

#[test]
fn four_bulk_streams_with_nbthread_4_keep_every_thread_busy() {
    let (sink, rx) = sink_server();
    let port = free_port();
    let cfg = format!(
        "global\n    nbthread {THREADS}\n{DEFAULTS}listen bulk\n    bind 127.0.0.1:{port}\n    server s 127.0.0.1:{}\n",
        sink.port
    );
    let proxy = start_hapx(&cfg, &[port]);
    let pid = proxy.child.id();
    // The streams connect one after the other and stay: each must land on its own thread.
    let streams: Vec<_> = (0..THREADS)
        .map(|_| {
            let c = connect(port, Duration::from_secs(5));
            thread::sleep(Duration::from_millis(50));
            c
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let before = loop_thread_ticks(pid);
    let writers: Vec<_> = streams
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                let chunk = vec![7u8; 256 * 1024];
                let until = Instant::now() + Duration::from_secs(3);
                let mut sent = 0u64;
                while Instant::now() < until {
                    c.write_all(&chunk).expect("write");
                    sent += chunk.len() as u64;
                }
                sent
            })
        })
        .collect();
    let sent: Vec<u64> = writers.into_iter().map(|w| w.join().expect("writer")).collect();
    let after = loop_thread_ticks(pid);
    for _ in 0..THREADS {
        let (len, _) = rx.recv_timeout(Duration::from_secs(10)).expect("the sink saw every stream end");
        assert!(sent.contains(&len), "a stream lost bytes: the sink got {len}, sent {sent:?}");
    }
    assert_eq!(before.len(), THREADS, "event-loop threads: {before:?}");
    let used: Vec<(String, u64)> = before.iter().zip(&after).map(|((n, b), (_, a))| (n.clone(), a - b)).collect();
    eprintln!("CPU ticks per event-loop thread while 4 streams ran: {used:?}");
    let most = used.iter().map(|(_, t)| *t).max().unwrap_or(0);
    assert!(most > 0, "no thread worked: {used:?}");
    for (name, t) in &used {
        assert!(*t * 5 >= most, "{name} carried no stream ({t} ticks, the busiest {most}): {used:?}");
    }
}
