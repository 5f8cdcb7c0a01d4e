//! The same config and the same client sequence against `haproxy -db -f` and `hapx -db -f`:
//! which server each connection reached (deterministic algorithms) and what the client sees
//! on error paths. Skipped with a note when `haproxy` is not installed.
mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// Three tag servers answering "a\n", "b\n", "c\n".
fn servers() -> Vec<Server> {
    ["a\n", "b\n", "c\n"].iter().map(|t| tag_server(t)).collect()
}

/// What one client saw: the data and how the connection ended (connections kept open by
/// the sequence report "open").
fn outcome(c: &mut std::net::TcpStream, hold: bool) -> String {
    if hold {
        let mut buf = [0u8; 64];
        c.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        return match std::io::Read::read(c, &mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).trim().to_string(),
            Err(e) => format!("error {:?}", e.kind()),
        };
    }
    c.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let mut buf = [0u8; 64];
    let first = match std::io::Read::read(c, &mut buf) {
        Ok(0) => return "EOF without data".into(),
        Ok(n) => String::from_utf8_lossy(&buf[..n]).trim().to_string(),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            return "no data, still open".into()
        }
        Err(_) => return "reset without data".into(),
    };
    first
}

/// One step of a client sequence.
#[derive(Clone, Copy)]
enum Step {
    /// Connect, read the tag, close.
    Once,
    /// Connect, read the tag, keep the connection.
    Hold,
    /// Close the held connection number n (in order of opening).
    Release(usize),
}

fn run_sequence(port: u16, steps: &[Step]) -> Vec<String> {
    let mut held = Vec::new();
    let mut seen = Vec::new();
    for step in steps {
        match *step {
            Step::Once => {
                let mut c = connect(port, Duration::from_secs(3));
                seen.push(outcome(&mut c, false));
                drop(c);
                // Let the proxy see the close before the next pick.
                std::thread::sleep(Duration::from_millis(20));
            }
            Step::Hold => {
                let mut c = connect(port, Duration::from_secs(3));
                seen.push(outcome(&mut c, true));
                held.push(Some(c));
            }
            Step::Release(n) => {
                if let Some(slot) = held.get_mut(n) {
                    *slot = None;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    seen
}

/// Runs `steps` against haproxy then hapx with the config from `cfg(port)`.
fn compare(cfg: impl Fn(u16) -> String, steps: &[Step]) {
    need("haproxy");
    let hp = free_port();
    let haproxy_seen = {
        let _p = start_haproxy(&cfg(hp), &[hp]);
        run_sequence(hp, steps)
    };
    let xp = free_port();
    let hapx_seen = {
        let _p = start_hapx(&cfg(xp), &[xp]);
        run_sequence(xp, steps)
    };
    assert_eq!(hapx_seen, haproxy_seen, "hapx (left) and haproxy (right) differ");
}

fn listen(port: u16, body: &str) -> String {
    format!("{DEFAULTS}listen d\n    bind 127.0.0.1:{port}\n{body}")
}

fn server_lines(srv: &[Server], extra: &[&str]) -> String {
    srv.iter()
        .zip(["a", "b", "c"])
        .enumerate()
        .map(|(i, (s, n))| format!("    server {n} 127.0.0.1:{} {}\n", s.port, extra.get(i).copied().unwrap_or("")))
        .collect()
}

#[test]
fn roundrobin_order_matches_haproxy() {
    let srv = servers();
    let lines = server_lines(&srv, &[]);
    compare(|p| listen(p, &format!("    balance roundrobin\n{lines}")), &[Step::Once; 9]);
}

#[test]
fn weighted_roundrobin_order_matches_haproxy() {
    let srv = servers();
    let lines = server_lines(&srv, &["weight 1", "weight 2", "weight 3"]);
    compare(|p| listen(p, &format!("    balance roundrobin\n{lines}")), &[Step::Once; 18]);
}

/// A full server is skipped and keeps its turn as if it had been served; once free it
/// comes back in HAProxy's order.
#[test]
fn weighted_roundrobin_skips_a_full_server_like_haproxy() {
    let srv = servers();
    let lines = server_lines(&srv, &["weight 3 maxconn 1", "weight 2", "weight 1"]);
    let mut steps = vec![Step::Hold];
    steps.extend([Step::Once; 9]);
    steps.push(Step::Release(0));
    steps.extend([Step::Once; 12]);
    compare(|p| listen(p, &format!("    balance roundrobin\n{lines}")), &steps);
}

/// Which tag each of `n` fresh connections reached.
fn tags(port: u16, n: usize) -> Vec<String> {
    run_sequence(port, &vec![Step::Once; n])
}

/// A tag server on a given port, retrying the bind while the previous listener there closes.
fn tag_server_on(port: u16, tag: &'static str) -> Server {
    let mut listener = None;
    wait_until(Duration::from_secs(5), || {
        listener = std::net::TcpListener::bind(("127.0.0.1", port)).ok();
        listener.is_some()
    });
    let listener = listener.unwrap_or_else(|| panic!("bind 127.0.0.1:{port}"));
    Server::start_on(listener, move |mut s, _| {
        let _ = std::io::Write::write_all(&mut s, tag.as_bytes());
        let mut buf = [0u8; 64];
        while std::io::Read::read(&mut s, &mut buf).is_ok_and(|k| k > 0) {}
    })
}

/// Weighted round robin while a server goes down (its listener closes, a check sees it) and
/// comes back on the same port: the order around both events is HAProxy's.
#[test]
fn weighted_roundrobin_around_a_server_down_and_up_like_haproxy() {
    need("haproxy");
    let (a, c) = (tag_server("a\n"), tag_server("c\n"));
    let b_port = free_port();
    let run = |start: &dyn Fn(&str, &[u16]) -> Proc| {
        let b = tag_server_on(b_port, "b\n");
        let port = free_port();
        let chk = "check inter 100ms fall 1 rise 1";
        let cfg = listen(
            port,
            &format!(
                "    balance roundrobin\n    server a 127.0.0.1:{} weight 2 {chk}\n    server b 127.0.0.1:{b_port} weight 3 {chk}\n    server c 127.0.0.1:{} weight 1 {chk}\n",
                a.port, c.port
            ),
        );
        let _p = start(&cfg, &[port]);
        // Let the first checks pass (HAProxy spreads them over up to a second).
        std::thread::sleep(Duration::from_millis(1500));
        let mut seen = tags(port, 7);
        drop(b);
        std::thread::sleep(Duration::from_millis(1500));
        seen.push("|".into());
        seen.extend(tags(port, 5));
        let b = tag_server_on(b_port, "b\n");
        std::thread::sleep(Duration::from_millis(1500));
        seen.push("|".into());
        seen.extend(tags(port, 14));
        drop(b);
        seen
    };
    let haproxy_seen = run(&start_haproxy);
    let hapx_seen = run(&start_hapx);
    assert!(haproxy_seen.iter().any(|t| t == "b"), "b never served: {haproxy_seen:?}");
    assert_eq!(hapx_seen, haproxy_seen, "hapx (left) and haproxy (right) differ");
}

#[test]
fn static_rr_order_matches_haproxy() {
    let srv = servers();
    let lines = server_lines(&srv, &[]);
    compare(|p| listen(p, &format!("    balance static-rr\n{lines}")), &[Step::Once; 9]);
}

#[test]
fn weighted_static_rr_order_matches_haproxy() {
    let srv = servers();
    let lines = server_lines(&srv, &["weight 3", "weight 1", "weight 2"]);
    compare(|p| listen(p, &format!("    balance static-rr\n{lines}")), &[Step::Once; 18]);
}

#[test]
fn first_fills_servers_in_order_like_haproxy() {
    let srv = servers();
    let lines = server_lines(&srv, &["maxconn 2", "maxconn 2", "maxconn 2"]);
    let steps = [Step::Hold, Step::Hold, Step::Hold, Step::Hold, Step::Hold, Step::Release(0), Step::Hold, Step::Hold];
    compare(|p| listen(p, &format!("    balance first\n{lines}")), &steps);
}

/// Connects from `src` (a 127.0.0.0/8 address) through python3, which can bind before
/// connecting; returns what it read.
fn from_source(src: &str, port: u16) -> String {
    let script = "import socket,sys\ns=socket.socket()\ns.settimeout(3)\ns.bind((sys.argv[1],0))\ns.connect(('127.0.0.1',int(sys.argv[2])))\ntry:\n d=s.recv(64)\n print(d.decode().strip() if d else 'EOF without data')\nexcept Exception as e:\n print('error', type(e).__name__)\n";
    let out = Command::new("python3").args(["-c", script, src, &port.to_string()]).output().expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn source_hash_matches_haproxy_for_fixed_client_addresses() {
    need("haproxy");
    need("python3");
    let srv = servers();
    let lines = server_lines(&srv, &[]);
    // Scattered and repeated addresses (consecutive ones would cycle like round-robin).
    let sources: Vec<String> = [
        "127.0.0.5",
        "127.0.0.5",
        "127.0.0.9",
        "127.1.2.3",
        "127.0.0.2",
        "127.0.0.9",
        "127.200.0.1",
        "127.0.0.5",
        "127.3.3.3",
        "127.0.0.8",
        "127.0.0.11",
        "127.1.2.3",
        "127.9.0.7",
        "127.0.0.2",
        "127.0.0.14",
        "127.0.0.17",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = |proxy: &str| {
        let port = free_port();
        let cfg = listen(port, &format!("    balance source\n{lines}"));
        let _p = if proxy == "haproxy" { start_haproxy(&cfg, &[port]) } else { start_hapx(&cfg, &[port]) };
        sources.iter().map(|s| from_source(s, port)).collect::<Vec<_>>()
    };
    let haproxy_seen = run("haproxy");
    let hapx_seen = run("hapx");
    assert!(haproxy_seen.iter().all(|s| s.len() == 1), "haproxy through python3: {haproxy_seen:?}");
    assert_eq!(hapx_seen, haproxy_seen, "hapx (left) and haproxy (right) differ");
}

#[test]
fn no_usable_server_closes_without_data_like_haproxy() {
    let srv = servers();
    let lines = server_lines(&srv[..1], &["disabled"]);
    compare(|p| listen(p, &lines), &[Step::Once; 2]);
}

#[test]
fn refused_everywhere_with_retries_closes_like_haproxy() {
    let (d1, d2) = (free_port(), free_port());
    compare(
        |p| listen(p, &format!("    retries 2\n    server a 127.0.0.1:{d1}\n    server b 127.0.0.1:{d2}\n")),
        &[Step::Once; 2],
    );
}

#[test]
fn refused_server_with_redispatch_reaches_the_live_one_like_haproxy() {
    let srv = servers();
    let dead = free_port();
    compare(
        |p| {
            listen(
                p,
                &format!(
                    "    retries 1\n    option redispatch\n    balance roundrobin\n    server dead 127.0.0.1:{dead}\n    server a 127.0.0.1:{}\n",
                    srv[0].port
                ),
            )
        },
        &[Step::Once; 4],
    );
}

/// One tcplog line with its variable fields masked: the client port, the date, and each timer
/// that has a value (an unreached step's -1 stays, it is not variable).
fn mask_tcplog(line: &str) -> String {
    let mut fields: Vec<String> = line.split(' ').map(str::to_string).collect();
    if let Some(client) = fields.first_mut() {
        if let Some((ip, _)) = client.rsplit_once(':') {
            *client = format!("{ip}:PORT");
        }
    }
    if let Some(date) = fields.get_mut(1) {
        if date.starts_with('[') && date.ends_with(']') {
            *date = "[DATE]".to_string();
        }
    }
    if let Some(timers) = fields.get_mut(4) {
        *timers = timers.split('/').map(|t| if t.starts_with('-') { t } else { "T" }).collect::<Vec<_>>().join("/");
    }
    fields.join(" ")
}

/// The lines a proxy wrote on its stdout (waits until `want` lines came, at most 3 s).
fn stdout_lines(p: &Proc, want: usize) -> Vec<String> {
    let path = p.stderr_path.with_extension("stdout");
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    wait_until(Duration::from_secs(3), || read().lines().count() >= want);
    read().lines().map(str::to_string).collect()
}

/// The tcplog client sequence: a normal session, a refused server, a client that resets,
/// a queue timeout behind a held session. Returns the proxy's log lines, masked.
fn tcplog_run(start: impl Fn(&str, &[u16]) -> Proc, tag: &Server, silent: &Server, queue: &Server) -> Vec<String> {
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let dead = free_port();
    let (ok, refused, reset, queued) = (ports[0], ports[1], ports[2], ports[3]);
    let cfg = format!(
        "global\n    log stdout format raw local0\n{DEFAULTS}    log global\n    option tcplog\n\
         listen ok\n    bind 127.0.0.1:{ok}\n    server s1 127.0.0.1:{}\n\
         listen refused\n    bind 127.0.0.1:{refused}\n    retries 0\n    server dead 127.0.0.1:{dead}\n\
         listen reset\n    bind 127.0.0.1:{reset}\n    server s2 127.0.0.1:{}\n\
         listen queued\n    bind 127.0.0.1:{queued}\n    timeout queue 300ms\n    server s3 127.0.0.1:{} maxconn 1\n",
        tag.port, silent.port, queue.port
    );
    let p = start(&cfg, &ports);
    let pause = || std::thread::sleep(Duration::from_millis(150));

    // A few bytes each way, the client closes first, the server follows.
    let mut c = connect(ok, Duration::from_secs(3));
    std::io::Write::write_all(&mut c, b"ping\n").expect("write");
    assert_eq!(read_n(&mut c, 6).expect("tag"), b"hello\n");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert!(read_to_end(&mut c).closed());
    drop(c);
    pause();

    // Nobody listens behind: no retry, the client is closed on.
    let mut c = connect(refused, Duration::from_secs(3));
    assert!(read_to_end(&mut c).closed());
    drop(c);
    pause();

    // The client sends, then closes with data unread: the kernel resets the connection.
    let mut c = connect(reset, Duration::from_secs(3));
    std::io::Write::write_all(&mut c, b"abc").expect("write");
    std::thread::sleep(Duration::from_millis(100));
    drop(c);
    pause();

    // The server takes one session; a second one waits 300 ms in the queue and is closed.
    let mut held = connect(queued, Duration::from_secs(3));
    assert_eq!(read_n(&mut held, 2).expect("tag"), b"q\n");
    let mut waiting = connect(queued, Duration::from_secs(3));
    assert!(read_to_end(&mut waiting).closed());
    drop(waiting);
    pause();
    drop(held);
    pause();

    stdout_lines(&p, 5).iter().map(|l| mask_tcplog(l)).collect()
}

#[test]
fn tcplog_lines_match_haproxy() {
    need("haproxy");
    let tag = tag_server("hello\n");
    // Reads and answers nothing.
    let silent = tag_server("");
    let queue = tag_server("q\n");
    let haproxy_lines = tcplog_run(start_haproxy, &tag, &silent, &queue);
    let hapx_lines = tcplog_run(start_hapx, &tag, &silent, &queue);
    assert_eq!(haproxy_lines.len(), 5, "haproxy logged {haproxy_lines:?}");
    assert!(
        hapx_lines == haproxy_lines,
        "hapx and haproxy log lines differ\nhapx:\n{}\nhaproxy:\n{}",
        hapx_lines.join("\n"),
        haproxy_lines.join("\n")
    );
}

/// The tcplog fields of a connection-error session, as each proxy logs them to stdout:
/// (backend/server, Tc, termination state, retries).
fn retry_log_fields(proxy: &str, cfg: &str, port: u16) -> Vec<String> {
    let p = if proxy == "haproxy" { start_haproxy(cfg, &[port]) } else { start_hapx(cfg, &[port]) };
    let mut c = connect(port, Duration::from_secs(5));
    let _ = std::io::Write::write_all(&mut c, b"x");
    let _ = read_to_end(&mut c);
    drop(c);
    let stdout = p.stderr_path.with_extension("stdout");
    let mut line = String::new();
    wait_until(Duration::from_secs(10), || {
        line = std::fs::read_to_string(&stdout).unwrap_or_default().lines().next().unwrap_or("").to_string();
        !line.is_empty()
    });
    // `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`
    let f: Vec<&str> = line.split_whitespace().collect();
    assert!(f.len() >= 9, "{proxy}: no tcplog line: {line:?}");
    let times: Vec<&str> = f[4].split('/').collect();
    let conns: Vec<&str> = f[7].split('/').collect();
    vec![f[3].to_string(), times[1].to_string(), f[6].to_string(), conns[4].to_string()]
}

/// A refused server retried `retries` times (with the turn-around between attempts), then
/// given up with `SC`; and with `option redispatch`, the retry going to another server at
/// once (`+1`): the log says the same as HAProxy's.
#[test]
fn connection_errors_log_termination_state_and_retries_like_haproxy() {
    need("haproxy");
    let live = tag_server("live\n");
    let dead = free_port();
    let base =
        "global\n    log stdout format raw local0\ndefaults\n    mode tcp\n    log global\n    option tcplog\n    \
                timeout connect 200ms\n    timeout client 1s\n    timeout server 1s\n";
    let cases = [
        format!("    retries 2\n    server dead 127.0.0.1:{dead}\n"),
        format!(
            "    retries 3\n    option redispatch\n    balance roundrobin\n    server dead 127.0.0.1:{dead}\n    \
             server live 127.0.0.1:{}\n",
            live.port
        ),
    ];
    for body in cases {
        let seen: Vec<Vec<String>> = ["haproxy", "hapx"]
            .iter()
            .map(|proxy| {
                let port = free_port();
                let cfg = format!("{base}listen l\n    bind 127.0.0.1:{port}\n{body}");
                retry_log_fields(proxy, &cfg, port)
            })
            .collect();
        eprintln!("haproxy {:?} / hapx {:?}", seen[0], seen[1]);
        assert_eq!(seen[1], seen[0], "hapx (left) and haproxy (right) differ for:\n{body}");
    }
}
