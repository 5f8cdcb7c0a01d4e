//! What each proxy costs, hapx against HAProxy in one run: both started from the same
//! configuration text (`mode tcp`, one `listen` with `balance roundrobin`, `nbthread N`), the
//! same traffic through each, and the proxy's own cost measured. The machines are shared
//! and noisy: runs are interleaved (the order alternates every round), repeated, and the
//! medians and the ratios hapx/haproxy reported.
//!
//! Metrics (names for BENCH_ONLY):
//! - `syscalls`: `strace -c -f -p PID` on the proxy while short connections (connect,
//!   1 byte, echo, close) go through it: syscalls per connection, in total and per syscall.
//! - `conn`: CPU of the proxy (all threads) per short connection over a timed run.
//! - `bulk`: CPU per GB streamed to a sink, plain and with `option splice-auto`,
//!   `splice-request`, `splice-response` (a proxy that refuses the options: "refused").
//! - `mqtt`: CPU per MQTT message at a fixed rate (QoS 0, 64-byte payload), publishers and
//!   a subscriber all through the proxy to mosquitto.
//! - `idle`: CPU (% of one core) with N idle MQTT connections held.
//!
//! CPU is read from /proc: utime + stime of /proc/PID/stat (whole process, in clock ticks)
//! and the exact time on CPU summed over /proc/PID/task/*/schedstat (nanoseconds); the
//! kernel derives the former from the latter, so they agree up to a tick, and the goals are
//! judged on the exact one.
//!
//! Run: `cargo bench --bench cost` (needs `haproxy`, `mosquitto`, `strace`; what lacks one
//! is skipped). Settings: BENCH_THREADS (nbthread values, default "1,2"), BENCH_ONLY
//! (metrics, default all), BENCH_ROUNDS (default 3), BENCH_SECONDS (connection-rate run,
//! default 2), BENCH_CLIENTS (client threads, default 4), BENCH_STRACE_CONNS (connections
//! under strace, default 2000), BENCH_BULK_MIB (per bulk run, default 512), BENCH_STREAMS
//! (default 2), BENCH_PUBLISHERS (default 2), BENCH_MQTT_RATE (messages/s in all, default
//! 2000), BENCH_MQTT_SECONDS (default 2), BENCH_CONNS (idle connections, default 2000),
//! BENCH_IDLE_SECONDS (default 5), BENCH_HAPX and BENCH_HAPROXY (the binaries).
mod common;

use common::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const NAMES: [&str; 2] = ["haproxy", "hapx"];
const HAPROXY: usize = 0;
const HAPX: usize = 1;
const METRICS: [&str; 5] = ["syscalls", "conn", "bulk", "mqtt", "idle"];
const SPLICE: [&str; 3] = ["option splice-auto", "option splice-request", "option splice-response"];

// ---------------------------------------------------------------------------------------
// Settings

struct Settings {
    threads: Vec<usize>,
    only: Vec<String>,
    rounds: usize,
    seconds: f64,
    clients: usize,
    strace_conns: usize,
    bulk_bytes: u64,
    streams: usize,
    publishers: usize,
    mqtt_rate: f64,
    mqtt_seconds: f64,
    conns: usize,
    idle_seconds: f64,
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    let v = std::env::var(name).unwrap_or_default();
    let v = if v.trim().is_empty() { default.to_string() } else { v };
    v.split(',').map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect()
}

impl Settings {
    fn from_env() -> Settings {
        let mut threads: Vec<usize> =
            env_list("BENCH_THREADS", "1,2").iter().filter_map(|w| w.parse().ok()).filter(|n| *n > 0).collect();
        if threads.is_empty() {
            threads = vec![1, 2];
        }
        Settings {
            threads,
            only: env_list("BENCH_ONLY", &METRICS.join(",")),
            rounds: (env_num("BENCH_ROUNDS", 3.0) as usize).max(1),
            seconds: env_num("BENCH_SECONDS", 2.0),
            clients: (env_num("BENCH_CLIENTS", 4.0) as usize).max(1),
            strace_conns: (env_num("BENCH_STRACE_CONNS", 2000.0) as usize).max(1),
            bulk_bytes: (env_num("BENCH_BULK_MIB", 512.0) * 1024.0 * 1024.0) as u64,
            streams: (env_num("BENCH_STREAMS", 2.0) as usize).max(1),
            publishers: (env_num("BENCH_PUBLISHERS", 2.0) as usize).max(1),
            mqtt_rate: env_num("BENCH_MQTT_RATE", 2000.0),
            mqtt_seconds: env_num("BENCH_MQTT_SECONDS", 2.0),
            conns: (env_num("BENCH_CONNS", 2000.0) as usize).max(1),
            idle_seconds: env_num("BENCH_IDLE_SECONDS", 5.0),
        }
    }
    fn on(&self, metric: &str) -> bool {
        self.only.iter().any(|m| m == metric)
    }
}

/// Round `r` runs haproxy first when even, hapx first when odd.
fn order(r: usize) -> [usize; 2] {
    if r % 2 == 0 {
        [HAPROXY, HAPX]
    } else {
        [HAPX, HAPROXY]
    }
}

// ---------------------------------------------------------------------------------------
// Proxies

struct Env {
    dir: PathBuf,
    nofile: u64,
    maxconn: u64,
    bins: [Option<PathBuf>; 2],
}

/// The configuration both proxies run; only the port of the `bind` differs.
fn proxy_config(bind: SocketAddr, server: SocketAddr, nbthread: usize, maxconn: u64, options: &[&str]) -> String {
    let mut s = format!(
        "global\n    nbthread {nbthread}\n    maxconn {maxconn}\n\n\
         defaults\n    mode tcp\n    maxconn {maxconn}\n    timeout connect 5s\n    timeout client 1h\n    timeout server 1h\n\n\
         listen bench\n    bind {bind}\n    balance roundrobin\n"
    );
    for o in options {
        let _ = writeln!(s, "    {o}");
    }
    let _ = writeln!(s, "    server s1 {server}");
    s
}

struct Proxy {
    proc: Proc,
    addr: SocketAddr,
}

/// Why a proxy is not there.
enum NoProxy {
    /// It exited at start: it refuses this configuration (the line it printed).
    Refused(String),
    /// Anything else (missing binary, no listener).
    Failed(String),
}

fn start_proxy(
    env: &Env,
    who: usize,
    server: SocketAddr,
    nbthread: usize,
    options: &[&str],
    tag: &str,
) -> Result<Proxy, NoProxy> {
    let Some(bin) = &env.bins[who] else { return Err(NoProxy::Failed(format!("{} not found", NAMES[who]))) };
    let addr = loopback(free_port());
    let cfg = env.dir.join(format!("{tag}-{}.cfg", NAMES[who]));
    std::fs::write(&cfg, proxy_config(addr, server, nbthread, env.maxconn, options))
        .map_err(|e| NoProxy::Failed(e.to_string()))?;
    let log = env.dir.join(format!("{tag}-{}.log", NAMES[who]));
    let mut proc =
        Proc::spawn(&format!("{} -db -f {}", quote(bin), quote(&cfg)), env.nofile, log).map_err(NoProxy::Failed)?;
    match proc.wait_listening(&[addr]) {
        Ok(()) => Ok(Proxy { proc, addr }),
        Err(e) => match proc.exited() {
            Some(_) => {
                let log = std::fs::read_to_string(&proc.log).unwrap_or_default();
                let line = log.lines().find(|l| l.contains("ALERT")).or(log.lines().last()).unwrap_or("").trim();
                Err(NoProxy::Refused(line.to_string()))
            }
            None => Err(NoProxy::Failed(e)),
        },
    }
}

/// Both proxies for one configuration; a cell that did not start records why in `row`s.
fn start_pair(
    env: &Env,
    server: SocketAddr,
    nbthread: usize,
    options: &[&str],
    tag: &str,
    rows: &mut [&mut Row],
    notes: &mut Vec<String>,
) -> [Option<Proxy>; 2] {
    let mut out = [None, None];
    for who in [HAPROXY, HAPX] {
        match start_proxy(env, who, server, nbthread, options, tag) {
            Ok(p) => out[who] = Some(p),
            Err(NoProxy::Refused(line)) => {
                notes.push(format!("{} refused the configuration ({tag}): `{line}`", NAMES[who]));
                for r in rows.iter_mut() {
                    r.refused[who] = true;
                }
            }
            Err(NoProxy::Failed(e)) => notes.push(format!("{} did not start ({tag}): {e}", NAMES[who])),
        }
    }
    out
}

/// The proxy `who` if it still runs; if it died, says so once (with its log) and drops it.
fn alive<'a>(pair: &'a mut [Option<Proxy>; 2], who: usize, notes: &mut Vec<String>) -> Option<&'a mut Proxy> {
    if let Some(p) = pair[who].as_mut() {
        if let Some(why) = p.proc.exited() {
            notes.push(format!("{} {why} during the run; log tail:\n```\n{}\n```", NAMES[who], p.proc.log_tail()));
            pair[who] = None;
        }
    }
    pair[who].as_mut()
}

// ---------------------------------------------------------------------------------------
// Results

struct Row {
    label: String,
    runs: [Vec<f64>; 2],
    refused: [bool; 2],
    /// hapx ≤ factor × HAProxy is the goal.
    goal: Option<f64>,
}

impl Row {
    fn new(label: String, goal: Option<f64>) -> Row {
        Row { label, runs: [Vec::new(), Vec::new()], refused: [false, false], goal }
    }
    fn median(&self, who: usize) -> f64 {
        median(&self.runs[who])
    }
    fn cell(&self, who: usize) -> String {
        if self.refused[who] {
            "refused".into()
        } else {
            fmt_num(self.median(who))
        }
    }
    fn range(&self, who: usize) -> Option<(f64, f64)> {
        self.runs[who].iter().copied().filter(|x| x.is_finite()).fold(None, |acc, x| match acc {
            None => Some((x, x)),
            Some((lo, hi)) => Some((x.min(lo), x.max(hi))),
        })
    }
    fn verdict(&self) -> String {
        let Some(f) = self.goal else { return String::new() };
        let (h, x) = (self.median(HAPROXY), self.median(HAPX));
        let what = if f == 1.0 { "≤ HAProxy".to_string() } else { format!("≤ {f}×") };
        let v = if self.refused[HAPX] {
            "hapx refuses the configuration"
        } else if !(h.is_finite() && x.is_finite()) {
            "not measured"
        } else if x <= h * f {
            "**met**"
        } else if matches!((self.range(HAPROXY), self.range(HAPX)), (Some((_, hhi)), Some((xlo, _))) if xlo <= hhi * f)
        {
            "not met (within the run-to-run spread)"
        } else {
            "not met"
        };
        format!("{what}: {v}")
    }
}

fn table(out: &mut String, title: &str, rows: &[&Row]) {
    let _ = writeln!(out, "\n#### {title}\n");
    let _ = writeln!(out, "| | haproxy | hapx | hapx/haproxy | goal |");
    let _ = writeln!(out, "|---|---:|---:|---:|---|");
    for r in rows {
        let (h, x) = (r.median(HAPROXY), r.median(HAPX));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.label,
            r.cell(HAPROXY),
            r.cell(HAPX),
            ratio(x, h),
            r.verdict()
        );
    }
    let _ = writeln!(out);
    for r in rows {
        let runs: Vec<String> = [HAPROXY, HAPX]
            .iter()
            .map(|&w| {
                let v: Vec<String> = r.runs[w].iter().map(|v| fmt_num(*v)).collect();
                format!("{} [{}]", NAMES[w], v.join(", "))
            })
            .collect();
        let _ = writeln!(out, "<sub>{} runs: {}</sub><br>", r.label, runs.join("; "));
    }
}

fn err_note(notes: &mut Vec<String>, who: usize, what: &str, e: Option<String>) {
    if let Some(e) = e {
        notes.push(format!("{} {what}: {e}", NAMES[who]));
    }
}

// ---------------------------------------------------------------------------------------
// 1. Syscalls per connection

/// (calls, errors) per syscall name, from the table `strace -c` writes.
fn parse_strace_c(text: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        let Some(&name) = t.last() else { continue };
        if name == "total" || name == "syscall" || !t[0].chars().next().is_some_and(|c| c.is_ascii_digit()) {
            continue;
        }
        // % time, seconds, usecs/call, calls, [errors,] syscall
        let calls = t.get(3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let errors = if t.len() >= 6 { t.get(4).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) } else { 0 };
        out.insert(name.to_string(), (calls, errors));
    }
    out
}

/// Per syscall, (calls, errors) per connection in each round.
type PerConn = BTreeMap<String, Vec<(f64, f64)>>;

struct StraceRun {
    calls: BTreeMap<String, (u64, u64)>,
    ok: u64,
    failed: u64,
}

/// Attaches `strace -c -f` to `pid`, makes `conns` short connections through `addr`, stops
/// strace with SIGINT and reads its table.
fn strace_run(
    strace: &Path,
    pid: u32,
    addr: SocketAddr,
    s: &Settings,
    dir: &Path,
    tag: &str,
) -> Result<StraceRun, String> {
    let table = dir.join(format!("{tag}.strace"));
    let log = dir.join(format!("{tag}.strace.log"));
    let mut st = Proc::spawn(&format!("{} -c -f -p {pid} -o {}", quote(strace), quote(&table)), 1024, log.clone())?;
    // Attached: strace says so on stderr (once per thread, or once "with N threads").
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(why) = st.exited() {
            return Err(format!("strace {why}: {}", st.log_tail()));
        }
        if std::fs::read_to_string(&log).unwrap_or_default().contains("attached") {
            break;
        }
        if Instant::now() > deadline {
            return Err("strace did not attach within 10 s".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(300));
    let (ok, failed, first) = conn_count(addr, s.clients, s.strace_conns);
    let _ = Command::new("kill").arg("-INT").arg(st.pid().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while st.exited().is_none() {
        if Instant::now() > deadline {
            return Err("strace did not stop within 10 s of SIGINT".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    if let Some(e) = first {
        return Err(format!("{failed} of {} connections failed under strace: {e}", s.strace_conns));
    }
    let text = std::fs::read_to_string(&table).map_err(|e| format!("{}: {e}", table.display()))?;
    let calls = parse_strace_c(&text);
    if calls.is_empty() {
        return Err(format!("no syscall table from strace:\n{text}"));
    }
    Ok(StraceRun { calls, ok, failed })
}

// ---------------------------------------------------------------------------------------
// 4. MQTT at a fixed rate

struct Paced {
    sent: u64,
    delivered: u64,
    cpu: Cpu,
    error: Option<String>,
}

/// `publishers` send QoS 0 messages through the proxy at `rate` messages/s in all for `dur`,
/// each message its own write; one subscriber (also through the proxy) counts what arrives.
/// The proxy's CPU is read from the first message to the last delivered (or 2 s of silence).
fn mqtt_paced(addr: SocketAddr, pid: u32, s: &Settings, topic: &str) -> Paced {
    let fail = |e: String| Paced { sent: 0, delivered: 0, cpu: Cpu { stat_ns: 0, sched_ns: 0 }, error: Some(e) };
    let mut sub = match mqtt_open(addr, "sub").and_then(|mut p| mqtt_subscribe(&mut p, topic).map(|_| p)) {
        Ok(p) => p,
        Err(e) => return fail(format!("subscriber: {e}")),
    };
    let mut pubs = Vec::new();
    for _ in 0..s.publishers {
        match mqtt_open(addr, "pub") {
            Ok(p) => pubs.push(p.s),
            Err(e) => return fail(format!("publisher: {e}")),
        }
    }
    thread::sleep(Duration::from_millis(200));
    let sent_total = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let dur = Duration::from_secs_f64(s.mqtt_seconds);
    let interval = Duration::from_secs_f64(s.publishers as f64 / s.mqtt_rate);
    let before = Cpu::read(pid);
    let start = Instant::now();
    let end = start + dur;
    let n = pubs.len() as u32;
    let handles: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(k, mut sock)| {
            let topic = topic.to_string();
            let sent_total = sent_total.clone();
            thread::spawn(move || -> Option<String> {
                let offset = interval * k as u32 / n;
                let mut pkt = Vec::with_capacity(128);
                for i in 0u32.. {
                    let due = start + offset + interval * i;
                    if due >= end {
                        break;
                    }
                    let now = Instant::now();
                    if due > now {
                        thread::sleep(due - now);
                    }
                    pkt.clear();
                    publish_packet(&mut pkt, &topic, &payload(i as u64));
                    if let Err(e) = sock.write_all(&pkt) {
                        return Some(format!("publish: {e}"));
                    }
                    sent_total.fetch_add(1, Ordering::AcqRel);
                }
                None
            })
        })
        .collect();
    let (sent, sub_done) = (sent_total.clone(), done.clone());
    let reader = thread::spawn(move || -> (u64, Cpu, Option<String>) {
        let mut got = 0u64;
        let mut last = Instant::now();
        let hard_end = end + Duration::from_secs(10);
        let mut error = None;
        loop {
            match sub.next() {
                Ok(Some((first, _))) if first >> 4 == 3 => {
                    got += 1;
                    last = Instant::now();
                }
                Ok(_) => {}
                Err(e) => {
                    error = Some(format!("subscriber: {e}"));
                    break;
                }
            }
            let now = Instant::now();
            if sub_done.load(Ordering::Acquire)
                && (got >= sent.load(Ordering::Acquire) || now.duration_since(last) > Duration::from_secs(2))
                || now > hard_end
            {
                break;
            }
        }
        let cpu = Cpu::read(pid).since(before);
        let _ = sub.s.write_all(&DISCONNECT);
        (got, cpu, error)
    });
    let mut error = None;
    for h in handles {
        match h.join() {
            Ok(e) => error = error.or(e),
            Err(_) => error = error.or(Some("publisher thread panicked".into())),
        }
    }
    done.store(true, Ordering::Release);
    let Ok((delivered, cpu, e)) = reader.join() else { return fail("subscriber thread panicked".into()) };
    Paced { sent: sent_total.load(Ordering::Acquire), delivered, cpu, error: error.or(e) }
}

// ---------------------------------------------------------------------------------------
// 5. Idle connections

// ---------------------------------------------------------------------------------------

fn main() {
    let s = Settings::from_env();
    let started = Instant::now();
    now_ns();
    let mut notes: Vec<String> = Vec::new();
    let mut settings_notes = 0;
    for m in &s.only {
        if !METRICS.contains(&m.as_str()) {
            eprintln!("BENCH_ONLY: unknown metric {m:?} (known: {})", METRICS.join(", "));
            std::process::exit(2);
        }
    }

    let dir = std::env::temp_dir().join(format!("hapx-cbench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let (soft, hard) = nofile_limits();
    let nofile = hard.min(200_000);
    // HAProxy sizes its descriptors as about 2 per connection plus 2 per pipe (maxconn / 4
    // pipes with splice), and refuses to start if the limit cannot hold them.
    let maxconn = ((nofile.saturating_sub(200)) / 3).min(50_000);
    // Both proxies hold their idle connections at once: the bench holds 2N descriptors.
    let conns = s.conns.min((soft.saturating_sub(200) / 2) as usize).min(maxconn.saturating_sub(50) as usize);
    if conns < s.conns && s.on("idle") {
        notes.push(format!(
            "idle connections scaled down from {} to {conns}: open-file limit {soft} (soft) / {hard} (hard)",
            s.conns
        ));
        settings_notes += 1;
    }

    let hapx = hapx_bin();
    if !hapx.is_file() {
        eprintln!("hapx binary {} not found (BENCH_HAPX)", hapx.display());
        std::process::exit(1);
    }
    let haproxy = haproxy_bin();
    if haproxy.is_none() {
        notes.push("haproxy not found (PATH, sbin or BENCH_HAPROXY): its cells are empty".into());
    }
    let env = Env { dir: dir.clone(), nofile, maxconn, bins: [haproxy.clone(), Some(hapx.clone())] };

    let (Ok(echo), Ok(sink)) = (start_echo(), start_sink()) else {
        eprintln!("cannot start the echo or sink server");
        std::process::exit(1);
    };
    let mut broker = None;
    let mut mosq = None;
    if s.on("mqtt") || s.on("idle") {
        match start_mosquitto(&dir, nofile) {
            Ok((p, a)) => (broker, mosq) = (Some(p), Some(a)),
            Err(e) => notes.push(format!("mosquitto did not start ({e}): MQTT metrics skipped")),
        }
    }
    let strace = find_bin("strace");
    if strace.is_none() && s.on("syscalls") {
        notes.push("strace not found: syscalls skipped".into());
    }
    let step = |what: &str| eprintln!("[{what}] at {:.0} s", started.elapsed().as_secs_f64());

    let mut out = String::new();

    // 1. Syscalls per connection.
    if let (true, Some(strace)) = (s.on("syscalls"), &strace) {
        step("syscalls");
        let mut totals = Vec::new();
        // Per (nbthread, proxy): per syscall, the (calls, errors) per connection of each round.
        let mut per: Vec<[PerConn; 2]> = Vec::new();
        for &n in &s.threads {
            let mut total = Row::new(format!("nbthread {n}: syscalls per connection"), None);
            let mut calls: [PerConn; 2] = [BTreeMap::new(), BTreeMap::new()];
            let mut pair = start_pair(&env, echo, n, &[], &format!("sys{n}"), &mut [&mut total], &mut notes);
            for r in 0..s.rounds {
                for who in order(r) {
                    let Some(p) = alive(&mut pair, who, &mut notes) else { continue };
                    match strace_run(strace, p.proc.pid(), p.addr, &s, &dir, &format!("sys{n}-{r}-{}", NAMES[who])) {
                        Ok(run) => {
                            let m = (run.ok + run.failed) as f64;
                            total.runs[who].push(run.calls.values().map(|c| c.0).sum::<u64>() as f64 / m);
                            for (name, (c, e)) in run.calls {
                                calls[who].entry(name).or_default().push((c as f64 / m, e as f64 / m));
                            }
                        }
                        Err(e) => notes.push(format!("{} syscalls (nbthread {n}): {e}", NAMES[who])),
                    }
                }
            }
            totals.push(total);
            per.push(calls);
        }
        table(
            &mut out,
            &format!(
                "1. Syscalls per connection (strace -c -f; {} connections per run, {} client threads)",
                s.strace_conns, s.clients
            ),
            &totals.iter().collect::<Vec<_>>(),
        );
        // Breakdown: the median per syscall (a round without it counts 0).
        let rounds_of = |t: usize, who: usize| totals[t].runs[who].len().max(1);
        let med = |v: &[(f64, f64)], rounds: usize| -> (f64, f64) {
            let mut c: Vec<f64> = v.iter().map(|x| x.0).collect();
            let mut e: Vec<f64> = v.iter().map(|x| x.1).collect();
            c.resize(rounds.max(c.len()), 0.0);
            e.resize(rounds.max(e.len()), 0.0);
            (median(&c), median(&e))
        };
        let mut names: Vec<String> = per.iter().flat_map(|p| p.iter().flat_map(|m| m.keys().cloned())).collect();
        names.sort();
        names.dedup();
        let weight = |name: &str| -> f64 {
            per.iter()
                .enumerate()
                .flat_map(|(t, p)| {
                    p.iter().enumerate().map(move |(who, m)| m.get(name).map_or(0.0, |v| med(v, rounds_of(t, who)).0))
                })
                .fold(0.0, f64::max)
        };
        names.sort_by(|a, b| weight(b).total_cmp(&weight(a)).then(a.cmp(b)));
        let _ = write!(
            out,
            "\nPer syscall, calls per connection (errors per connection in parentheses), medians:\n\n| syscall |"
        );
        for &n in &s.threads {
            let _ = write!(out, " haproxy nbthread {n} | hapx nbthread {n} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &s.threads {
            let _ = write!(out, "---:|---:|");
        }
        let _ = writeln!(out);
        for name in &names {
            let _ = write!(out, "| {name} |");
            for (t, p) in per.iter().enumerate() {
                for who in [HAPROXY, HAPX] {
                    let cell = match p[who].get(name) {
                        None => "·".to_string(),
                        Some(v) => {
                            let (c, e) = med(v, rounds_of(t, who));
                            if e > 0.0 {
                                format!("{} ({})", fmt_num(c), fmt_num(e))
                            } else {
                                fmt_num(c)
                            }
                        }
                    };
                    let _ = write!(out, " {cell} |");
                }
            }
            let _ = writeln!(out);
        }
    }

    // 2. CPU per connection.
    if s.on("conn") {
        step("conn");
        let mut rows = Vec::new();
        for &n in &s.threads {
            let mut stat = Row::new(format!("nbthread {n}: µs CPU per connection (utime+stime)"), None);
            let mut sched = Row::new(format!("nbthread {n}: µs CPU per connection (schedstat)"), Some(0.75));
            let mut rate = Row::new(format!("nbthread {n}: connections/s (under this load)"), None);
            let mut pair = start_pair(
                &env,
                echo,
                n,
                &[],
                &format!("conn{n}"),
                &mut [&mut stat, &mut sched, &mut rate],
                &mut notes,
            );
            for r in 0..s.rounds {
                for who in order(r) {
                    let Some(p) = alive(&mut pair, who, &mut notes) else { continue };
                    let pid = p.proc.pid();
                    let addr = p.addr;
                    thread::sleep(Duration::from_millis(200));
                    let before = Cpu::read(pid);
                    let (ok, err, first, secs) = conn_for(addr, s.clients, Duration::from_secs_f64(s.seconds));
                    let cpu = Cpu::read(pid).since(before);
                    err_note(&mut notes, who, &format!("connection errors (nbthread {n}, {err} failed)"), first);
                    let ok = ok.max(1) as f64;
                    stat.runs[who].push(cpu.stat_ns as f64 / 1e3 / ok);
                    sched.runs[who].push(cpu.sched_ns as f64 / 1e3 / ok);
                    rate.runs[who].push(ok / secs);
                }
            }
            rows.extend([sched, stat, rate]);
        }
        table(
            &mut out,
            &format!(
                "2. CPU per connection (connect, 1 byte, echo, close; {} client threads, {} s runs)",
                s.clients, s.seconds
            ),
            &rows.iter().collect::<Vec<_>>(),
        );
    }

    // 3. CPU per GB, plain and spliced.
    if s.on("bulk") {
        step("bulk");
        let mut rows = Vec::new();
        for (variant, options) in [("plain", &[][..]), ("splice", &SPLICE[..])] {
            for &n in &s.threads {
                let mut stat = Row::new(format!("{variant}, nbthread {n}: µs CPU per GB (utime+stime)"), None);
                let mut sched = Row::new(format!("{variant}, nbthread {n}: µs CPU per GB (schedstat)"), Some(0.6));
                let mut gbps = Row::new(format!("{variant}, nbthread {n}: Gbit/s (under this load)"), None);
                let mut pair = start_pair(
                    &env,
                    sink,
                    n,
                    options,
                    &format!("bulk-{variant}{n}"),
                    &mut [&mut stat, &mut sched, &mut gbps],
                    &mut notes,
                );
                for r in 0..s.rounds {
                    for who in order(r) {
                        let Some(p) = alive(&mut pair, who, &mut notes) else { continue };
                        let pid = p.proc.pid();
                        let addr = p.addr;
                        let before = Cpu::read(pid);
                        let (g, e) = bulk(addr, s.streams, s.bulk_bytes);
                        let cpu = Cpu::read(pid).since(before);
                        if e.is_some() {
                            err_note(&mut notes, who, &format!("bulk error ({variant}, nbthread {n})"), e);
                            continue;
                        }
                        let gb = (s.bulk_bytes / s.streams as u64 * s.streams as u64) as f64 / 1e9;
                        stat.runs[who].push(cpu.stat_ns as f64 / 1e3 / gb);
                        sched.runs[who].push(cpu.sched_ns as f64 / 1e3 / gb);
                        gbps.runs[who].push(g);
                    }
                }
                rows.extend([sched, stat, gbps]);
            }
        }
        table(
            &mut out,
            &format!(
                "3. CPU per GB streamed to a sink ({} streams, {} MiB per run; splice: `{}`)",
                s.streams,
                s.bulk_bytes >> 20,
                SPLICE.join("`, `")
            ),
            &rows.iter().collect::<Vec<_>>(),
        );
    }

    // 4. CPU per MQTT message at a fixed rate.
    if let (true, Some(mqtt)) = (s.on("mqtt"), mosq) {
        step("mqtt");
        let mut rows = Vec::new();
        for &n in &s.threads {
            let mut stat = Row::new(format!("nbthread {n}: µs CPU per message (utime+stime)"), None);
            let mut sched = Row::new(format!("nbthread {n}: µs CPU per message (schedstat)"), Some(0.75));
            let mut deliv = Row::new(format!("nbthread {n}: messages delivered"), None);
            let mut pair = start_pair(
                &env,
                mqtt,
                n,
                &[],
                &format!("mqtt{n}"),
                &mut [&mut stat, &mut sched, &mut deliv],
                &mut notes,
            );
            for r in 0..s.rounds {
                for who in order(r) {
                    if broker.as_mut().and_then(|b| b.exited()).is_some() {
                        notes.push("mosquitto exited; later MQTT runs skipped".into());
                        broker = None;
                    }
                    if broker.is_none() {
                        break;
                    }
                    let Some(p) = alive(&mut pair, who, &mut notes) else { continue };
                    let run = mqtt_paced(p.addr, p.proc.pid(), &s, &format!("cost/{n}/{r}/{}", NAMES[who]));
                    err_note(&mut notes, who, &format!("MQTT error (nbthread {n})"), run.error);
                    if run.delivered < run.sent {
                        notes.push(format!(
                            "{} nbthread {n} round {r}: {} of {} messages delivered",
                            NAMES[who], run.delivered, run.sent
                        ));
                    }
                    let m = run.delivered.max(1) as f64;
                    stat.runs[who].push(run.cpu.stat_ns as f64 / 1e3 / m);
                    sched.runs[who].push(run.cpu.sched_ns as f64 / 1e3 / m);
                    deliv.runs[who].push(run.delivered as f64);
                }
            }
            rows.extend([sched, stat, deliv]);
        }
        table(
            &mut out,
            &format!(
                "4. CPU per MQTT message at {} msg/s ({} publishers and 1 subscriber through the proxy, QoS 0, \
                 64-byte payload, {} s; each message crosses the proxy twice)",
                s.mqtt_rate, s.publishers, s.mqtt_seconds
            ),
            &rows.iter().collect::<Vec<_>>(),
        );
    }

    // 5. Idle CPU: both proxies hold their connections at once and are measured over the
    // same windows (an idle proxy does not compete with the other).
    if let (true, Some(mqtt)) = (s.on("idle"), mosq) {
        step("idle");
        let mut rows = Vec::new();
        for &n in &s.threads {
            let mut stat = Row::new(format!("nbthread {n}: CPU % of one core (utime+stime)"), None);
            let mut sched = Row::new(format!("nbthread {n}: CPU % of one core (schedstat)"), Some(1.0));
            let mut pair =
                start_pair(&env, mqtt, n, &[], &format!("idle{n}"), &mut [&mut stat, &mut sched], &mut notes);
            let mut held: [Vec<Packets>; 2] = [Vec::new(), Vec::new()];
            let mut errors: [Option<String>; 2] = [None, None];
            for who in [HAPROXY, HAPX] {
                if let Some(p) = alive(&mut pair, who, &mut notes) {
                    held[who] = open_mqtt_conns(p.addr, conns, &mut errors[who]);
                    answered(&mut held[who], 2, "CONNACK", &mut errors[who]);
                }
            }
            thread::sleep(Duration::from_millis(500));
            for _ in 0..s.rounds {
                let before = [HAPROXY, HAPX].map(|w| pair[w].as_ref().map(|p| Cpu::read(p.proc.pid())));
                let t0 = Instant::now();
                thread::sleep(Duration::from_secs_f64(s.idle_seconds));
                let secs = t0.elapsed().as_secs_f64();
                for who in [HAPROXY, HAPX] {
                    let (Some(p), Some(b)) = (pair[who].as_ref(), before[who]) else { continue };
                    let cpu = Cpu::read(p.proc.pid()).since(b);
                    stat.runs[who].push(cpu.stat_ns as f64 / 1e9 / secs * 100.0);
                    sched.runs[who].push(cpu.sched_ns as f64 / 1e9 / secs * 100.0);
                }
            }
            for who in [HAPROXY, HAPX] {
                let opened = held[who].len();
                let conns_of = std::mem::take(&mut held[who]);
                if opened > 0 {
                    let alive_n = close_idle(conns_of, &mut errors[who]);
                    if opened < conns || alive_n < conns {
                        notes.push(format!(
                            "{} idle (nbthread {n}): {opened} of {conns} opened, {alive_n} answered PINGREQ after the wait",
                            NAMES[who]
                        ));
                    }
                }
                err_note(&mut notes, who, &format!("idle error (nbthread {n})"), errors[who].take());
            }
            rows.extend([sched, stat]);
        }
        table(
            &mut out,
            &format!(
                "5. Idle CPU, {conns} idle MQTT connections (CONNECT/CONNACK done) held by each proxy, {} s windows, \
                 both proxies measured over the same windows",
                s.idle_seconds
            ),
            &rows.iter().collect::<Vec<_>>(),
        );
    }
    drop(broker);

    let version = |bin: &Option<PathBuf>| -> String {
        let Some(b) = bin else { return "—".into() };
        Command::new(b)
            .arg("-v")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string))
            .unwrap_or_default()
    };
    let mut head = String::new();
    let _ = writeln!(
        head,
        "Settings: nbthread {:?}; {} rounds, interleaved (order alternates), medians; metrics {}; {} CPUs; \
         haproxy: {}; hapx: {} ({}); bench run took {:.0} s.",
        s.threads,
        s.rounds,
        s.only.join(", "),
        thread::available_parallelism().map_or(0, |n| n.get()),
        version(&haproxy),
        version(&Some(hapx.clone())),
        hapx.display(),
        started.elapsed().as_secs_f64()
    );
    print!("{head}{out}");
    if !notes.is_empty() {
        println!("\n#### Notes\n");
        for n in &notes {
            println!("- {n}");
        }
    }
    // A refused configuration is a state of hapx, not a problem of the run.
    let refusals = notes.iter().filter(|n| n.contains("refused the configuration")).count();
    if notes.len() == settings_notes + refusals {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("configurations and logs kept in {}", dir.display());
    }
}
