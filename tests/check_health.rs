//! Health checks against real loopback sockets: refused ports, listeners that come back,
//! banner responders, and (when installed) a real mosquitto broker. Every wait is bounded.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hapx::model::tcp_check::parse_lines as parse_tcp_check_rules;
use hapx::runtime::check::{ChangeKind, CheckConfig, Checker, InitState, Notify, OnError, StateChange};
use hapx::runtime::state::ServerState;

fn server(backend: &str, name: &str, addr: SocketAddr, backup: bool) -> Arc<ServerState> {
    Arc::new(ServerState { backup, ..ServerState::new(0, backend, name, addr) })
}

/// A loopback port nobody listens on (bound then released).
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<StateChange>>>);

impl Recorder {
    fn notify(&self) -> Notify {
        let inner = Arc::clone(&self.0);
        Arc::new(move |c: &StateChange| {
            if let Ok(mut v) = inner.lock() {
                v.push(c.clone());
            }
        })
    }

    fn all(&self) -> Vec<StateChange> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits (bounded) for the n-th event of `kind`.
    fn wait_for(&self, kind: ChangeKind, nth: usize, within: Duration) -> Option<StateChange> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            let found: Vec<StateChange> = self.all().into_iter().filter(|c| c.kind == kind).collect();
            if let Some(c) = found.get(nth) {
                return Some(c.clone());
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

/// Check durations vary; the tests compare texts with them set to 0ms.
fn normalize(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("check duration: ") {
        let (head, tail) = rest.split_at(i + "check duration: ".len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        out.push('0');
        rest = tail.get(digits..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

fn fast(addr: SocketAddr, rise: u32, fall: u32) -> CheckConfig {
    let mut c = CheckConfig::new(addr);
    c.inter = Duration::from_millis(100);
    c.fastinter = c.inter;
    c.downinter = c.inter;
    c.rise = rise;
    c.fall = fall;
    c
}

#[test]
fn refused_server_goes_down_after_fall_checks_and_up_after_rise() {
    let addr = closed_port();
    let s = server("mqtt", "broker_1", addr, false);
    let mut cfg = fast(addr, 2, 3);
    cfg.init_state = InitState::FullyUp;
    let rec = Recorder::default();
    let start = Instant::now();
    let h = Checker::spawn(vec![(Arc::clone(&s), cfg, "mqtt".to_string(), rec.notify())]);

    // fall checks at inter, plus the spread and slack: inter×fall + 2×inter, doubled.
    let down = rec.wait_for(ChangeKind::Down, 0, Duration::from_millis(2 * (100 * 3 + 200) + 1000));
    let down = down.expect("server never marked DOWN");
    assert!(start.elapsed() >= Duration::from_millis(180), "DOWN before fall checks: {:?}", start.elapsed());
    assert_eq!(
        normalize(&down.text),
        "Server mqtt/broker_1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check \
         duration: 0ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
    );
    assert!(down.backend_now_empty);
    assert_eq!(down.no_server_text.as_deref(), Some("backend 'mqtt' has no server available!"));
    assert!(!s.up.load(Ordering::Acquire));

    let listener = TcpListener::bind(addr).expect("rebind the checked port");
    let up = rec.wait_for(ChangeKind::Up, 0, Duration::from_millis(2 * (100 * 2 + 200) + 1000));
    let up = up.expect("server never marked UP");
    assert_eq!(
        normalize(&up.text),
        "Server mqtt/broker_1 is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup \
         servers online. 0 sessions requeued, 0 total in queue."
    );
    assert!(!up.backend_now_empty);
    assert!(s.up.load(Ordering::Acquire));
    h.stop();
    drop(listener);
    // Exactly one DOWN and one UP: no flapping, and nothing without log-health-checks.
    let kinds: Vec<ChangeKind> = rec.all().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, vec![ChangeKind::Down, ChangeKind::Up]);
}

#[test]
fn log_health_checks_prints_each_step_like_haproxy() {
    // HAProxy 2.6, rise 2 fall 2, server refusing then listening, prints exactly this.
    let addr = closed_port();
    let s = server("mqtt", "broker_1", addr, false);
    let mut cfg = fast(addr, 2, 2);
    cfg.log_health_checks = true;
    cfg.listen = true;
    let rec = Recorder::default();
    let h = Checker::spawn(vec![(Arc::clone(&s), cfg, "mqtt".to_string(), rec.notify())]);
    let down = rec.wait_for(ChangeKind::Down, 0, Duration::from_secs(3)).expect("no DOWN");
    assert_eq!(down.no_server_text.as_deref(), Some("proxy 'mqtt' has no server available!"));
    let listener = TcpListener::bind(addr).expect("rebind");
    rec.wait_for(ChangeKind::Up, 0, Duration::from_secs(3)).expect("no UP");
    h.stop();
    drop(listener);
    let texts: Vec<String> = rec.all().iter().map(|c| normalize(&c.text)).collect();
    let expected = [
        "Health check for server mqtt/broker_1 failed, reason: Layer4 connection problem, info: \"Connection \
         refused\", check duration: 0ms, status: 0/2 DOWN.",
        "Server mqtt/broker_1 is DOWN. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 \
         remaining in queue.",
        "Health check for server mqtt/broker_1 succeeded, reason: Layer4 check passed, check duration: 0ms, status: \
         1/2 DOWN.",
        "Health check for server mqtt/broker_1 succeeded, reason: Layer4 check passed, check duration: 0ms, status: \
         2/2 UP.",
        "Server mqtt/broker_1 is UP. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
    ];
    assert_eq!(texts.get(..expected.len()), Some(&expected.map(String::from)[..]), "got {texts:#?}");
}

/// Serves `banner` to every connection after reading `expect` (bounded), then closes.
fn responder(expect: &'static [u8], banner: &'static [u8], hold: Duration) -> (SocketAddr, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    l.set_nonblocking(true).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        while !stop2.load(Ordering::Acquire) && Instant::now() < end {
            match l.accept() {
                Ok((mut c, _)) => {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
                    let mut got = Vec::new();
                    let mut buf = [0u8; 256];
                    while !got.windows(expect.len()).any(|w| w == expect) {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = c.write_all(banner);
                    thread::sleep(hold);
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    (addr, stop)
}

fn lines(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|w: &Vec<String>| !w.is_empty())
        .collect()
}

fn ping_rules() -> Vec<hapx::runtime::check::TcpCheckRule> {
    let mut l = lines("tcp-check send PING\ntcp-check expect string +PONG");
    // The config lexer turns "PING\r\n" into these bytes.
    if let Some(w) = l.get_mut(0).and_then(|w| w.get_mut(2)) {
        w.push_str("\r\n");
    }
    parse_tcp_check_rules(&l).expect("rules")
}

#[test]
fn tcp_check_banner_passes_and_wrong_banner_fails_with_exact_reason() {
    let (good, stop_good) = responder(b"PING\r\n", b"+PONG\r\n", Duration::from_millis(0));
    let (bad, stop_bad) = responder(b"PING\r\n", b"-NOPE\r\n", Duration::from_millis(0));
    let rec = Recorder::default();
    let mut targets = Vec::new();
    for (name, addr) in [("good", good), ("bad", bad)] {
        let mut cfg = fast(addr, 1, 1);
        cfg.tcp_check = true;
        cfg.rules = ping_rules();
        cfg.init_state = InitState::FullyDown;
        targets.push((server("t7", name, addr, false), cfg, "t7".to_string(), rec.notify()));
    }
    let h = Checker::spawn(targets);
    let up = rec.wait_for(ChangeKind::Up, 0, Duration::from_secs(3)).expect("good server never UP");
    assert_eq!(
        normalize(&up.text),
        "Server t7/good is UP, reason: Layer7 check passed, code: 0, info: \"(tcp-check)\", check duration: 0ms. 1 \
         active and 0 backup servers online. 0 sessions requeued, 0 total in queue."
    );
    thread::sleep(Duration::from_millis(500));
    // The bad one started down and never came up: nothing else is reported.
    assert!(rec.all().iter().all(|c| c.server == "good"), "{:#?}", rec.all());
    h.stop();

    // Started up, the wrong banner takes it down with HAProxy's words.
    let rec = Recorder::default();
    let mut cfg = fast(bad, 1, 1);
    cfg.tcp_check = true;
    cfg.rules = ping_rules();
    let h = Checker::spawn(vec![(server("t7", "bad", bad, false), cfg, "t7".to_string(), rec.notify())]);
    let down = rec.wait_for(ChangeKind::Down, 0, Duration::from_secs(3)).expect("bad server never DOWN");
    assert_eq!(
        normalize(&down.text),
        "Server t7/bad is DOWN, reason: Layer7 invalid response, info: \"TCPCHK did not match content '+PONG' at \
         step 2\", check duration: 0ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 \
         remaining in queue."
    );
    h.stop();
    stop_good.store(true, Ordering::Release);
    stop_bad.store(true, Ordering::Release);
}

#[test]
fn silent_server_times_out_at_layer7_with_the_step_named() {
    let (silent, stop) = responder(b"PING\r\n", b"", Duration::from_millis(1500));
    let rec = Recorder::default();
    let mut cfg = fast(silent, 1, 1);
    cfg.inter = Duration::from_millis(300);
    cfg.tcp_check = true;
    cfg.rules = ping_rules();
    let h = Checker::spawn(vec![(server("t7", "s3", silent, false), cfg, "t7".to_string(), rec.notify())]);
    let down = rec.wait_for(ChangeKind::Down, 0, Duration::from_secs(4)).expect("never DOWN");
    assert!(
        down.text.starts_with(
            "Server t7/s3 is DOWN, reason: Layer7 timeout, info: \" at step 2 of tcp-check (expect string '+PONG')\", \
             check duration: 3"
        ),
        "{}",
        down.text
    );
    h.stop();
    stop.store(true, Ordering::Release);
}

#[test]
fn observed_traffic_errors_mark_down() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let s = server("px", "s", addr, false);
    let mut cfg = fast(addr, 2, 3);
    cfg.inter = Duration::from_millis(200);
    cfg.observe_layer4 = true;
    cfg.error_limit = 3;
    cfg.on_error = OnError::MarkDown;
    let rec = Recorder::default();
    let h = Checker::spawn(vec![(Arc::clone(&s), cfg, "px".to_string(), rec.notify())]);
    thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        h.report_connection_error(&s);
    }
    let down = rec.wait_for(ChangeKind::Down, 0, Duration::from_secs(2)).expect("never DOWN");
    assert_eq!(
        down.text,
        "Server px/s is DOWN, reason: Health analyze, info: \"Detected 3 consecutive errors, last one was: L4 \
         unsuccessful connection\". 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining \
         in queue."
    );
    // Checks still pass: it comes back after rise checks.
    rec.wait_for(ChangeKind::Up, 0, Duration::from_secs(3)).expect("never back UP");
    h.stop();
    drop(l);
}

#[test]
fn backup_servers_are_counted_and_named() {
    let dead = closed_port();
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let alive = l.local_addr().expect("addr");
    let rec = Recorder::default();
    let a = server("mqtt", "broker_1", dead, false);
    let b = server("mqtt", "broker_2", alive, true);
    let h = Checker::spawn(vec![
        (a, fast(dead, 2, 3), "mqtt".to_string(), rec.notify()),
        (b, fast(alive, 2, 3), "mqtt".to_string(), rec.notify()),
    ]);
    let down = rec.wait_for(ChangeKind::Down, 0, Duration::from_secs(3)).expect("never DOWN");
    assert_eq!(
        normalize(&down.text),
        "Server mqtt/broker_1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check \
         duration: 0ms. 0 active and 1 backup servers left. Running on backup. 0 sessions active, 0 requeued, 0 \
         remaining in queue."
    );
    assert!(!down.backend_now_empty);
    h.stop();
    drop(l);
}

/// MQTT 3.1.1 CONNECT, clean session, empty client id, keepalive 60.
const MQTT_CONNECT: &str = "100c00044d5154540402003c0000";

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_mosquitto() -> Option<(Broker, SocketAddr, std::path::PathBuf)> {
    let addr = closed_port();
    let dir = std::env::temp_dir().join(format!("hapx-check-mosquitto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, format!("listener {} 127.0.0.1\nallow_anonymous true\n", addr.port())).ok()?;
    let child =
        Command::new("mosquitto").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
    let broker = Broker(child);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Some((broker, addr, dir));
        }
        thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn mqtt_connect_connack_check_against_mosquitto() {
    let Some((broker, addr, dir)) = start_mosquitto() else {
        panic!("mosquitto is required by this test (.ci/run installs it) and did not start");
    };
    let rules = parse_tcp_check_rules(&lines(&format!(
        "tcp-check send-binary {MQTT_CONNECT}\ntcp-check expect binary 20020000"
    )))
    .expect("rules");
    let mut cfg = fast(addr, 2, 2);
    cfg.tcp_check = true;
    cfg.rules = rules;
    cfg.init_state = InitState::FullyDown;
    let rec = Recorder::default();
    let h = Checker::spawn(vec![(server("mqtt", "broker_1", addr, false), cfg, "mqtt".to_string(), rec.notify())]);
    let up = rec.wait_for(ChangeKind::Up, 0, Duration::from_secs(4)).expect("broker never UP");
    assert_eq!(
        normalize(&up.text),
        "Server mqtt/broker_1 is UP, reason: Layer7 check passed, code: 0, info: \"(tcp-check)\", check duration: \
         0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."
    );
    drop(broker);
    let down = rec.wait_for(ChangeKind::Down, 0, Duration::from_secs(4)).expect("broker never DOWN");
    assert_eq!(
        normalize(&down.text),
        "Server mqtt/broker_1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused at initial \
         connection step of tcp-check\", check duration: 0ms. 0 active and 0 backup servers left. 0 sessions \
         active, 0 requeued, 0 remaining in queue."
    );
    h.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_thousand_refused_servers_on_one_thread() {
    let addr = closed_port();
    let rec = Recorder::default();
    let n = 2000;
    let targets = (0..n)
        .map(|i| {
            let mut cfg = fast(addr, 1, 1);
            cfg.inter = Duration::from_millis(500);
            (server("big", &format!("s{i}"), addr, false), cfg, "big".to_string(), rec.notify())
        })
        .collect();
    let h = Checker::spawn(targets);
    let last = rec.wait_for(ChangeKind::Down, n - 1, Duration::from_secs(10)).expect("not all DOWN");
    assert!(last.text.contains(" 0 active and 0 backup servers left."), "{}", last.text);
    assert!(last.backend_now_empty);
    h.stop();
}
