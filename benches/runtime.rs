//! The runtime side by side: a direct connection (the limit), `haproxy` and `hapx`, all
//! started from the same configuration text (only the ports differ, `nbthread 1` for both),
//! measured in one run on one machine. The machines are shared and noisy: runs of the
//! targets are interleaved (the order rotates every round), repeated, and the medians and
//! their ratios are reported.
//!
//! Metrics: new connections per second, bulk throughput, MQTT messages per second and
//! latency through mosquitto, resident memory per idle MQTT connection.
//!
//! Run: `cargo bench --bench runtime` (needs `haproxy` and `mosquitto` on PATH; without
//! them the missing parts are skipped). Scale with BENCH_SECONDS (per timed run, default 2),
//! BENCH_CONNS (idle connections, default 10000), BENCH_ROUNDS (default 3),
//! BENCH_BULK_MIB (bytes pushed per bulk run, default 1024), BENCH_CLIENTS (connection-rate
//! client threads, default 8), BENCH_STREAMS (bulk streams, default 2), BENCH_PUBLISHERS
//! (MQTT publishers, default 2).
//!
//! The process, server, MQTT client and formatting pieces are in `benches/common`, shared
//! with `benches/cost.rs`. BENCH_HAPX and BENCH_HAPROXY name other binaries to measure.
mod common;

use common::*;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Settings

struct Settings {
    seconds: f64,
    conns: usize,
    rounds: usize,
    bulk_bytes: u64,
    clients: usize,
    streams: usize,
    publishers: usize,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            seconds: env_num("BENCH_SECONDS", 2.0),
            conns: env_num("BENCH_CONNS", 10_000.0) as usize,
            rounds: (env_num("BENCH_ROUNDS", 3.0) as usize).max(1),
            bulk_bytes: (env_num("BENCH_BULK_MIB", 1024.0) * 1024.0 * 1024.0) as u64,
            clients: (env_num("BENCH_CLIENTS", 8.0) as usize).max(1),
            streams: (env_num("BENCH_STREAMS", 2.0) as usize).max(1),
            publishers: (env_num("BENCH_PUBLISHERS", 2.0) as usize).max(1),
        }
    }
    fn run_time(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }
}

// ---------------------------------------------------------------------------------------
// Measurements

struct MqttRun {
    rate: f64,
    sent: u64,
    received: u64,
    error: Option<String>,
}

/// Messages in flight (published, not yet received) at most, across publishers: a closed
/// loop, so the broker's queue stays bounded and the rate measured is the sustained one.
const WINDOW: u64 = 1000;

/// Metric 3a: publishers send QoS 0 messages through the proxy to the broker for `dur`;
/// one subscriber (also through the proxy) counts what arrives within the window.
fn mqtt_rate(addr: SocketAddr, publishers: usize, dur: Duration, topic: &str) -> MqttRun {
    let fail = |e: String| MqttRun { rate: f64::NAN, sent: 0, received: 0, error: Some(e) };
    let mut sub = match mqtt_open(addr, "sub").and_then(|mut p| mqtt_subscribe(&mut p, topic).map(|_| p)) {
        Ok(p) => p,
        Err(e) => return fail(format!("subscriber: {e}")),
    };
    let mut pubs = Vec::new();
    for _ in 0..publishers {
        match mqtt_open(addr, "pub") {
            Ok(p) => pubs.push(p.s),
            Err(e) => return fail(format!("publisher: {e}")),
        }
    }
    let sent_total = Arc::new(AtomicU64::new(0));
    let received_total = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let end = start + dur;
    let handles: Vec<_> = pubs
        .into_iter()
        .map(|mut s| {
            let topic = topic.to_string();
            let (sent_total, received_total) = (sent_total.clone(), received_total.clone());
            thread::spawn(move || -> (u64, Option<String>) {
                let mut sent = 0u64;
                let mut batch = Vec::with_capacity(4 * 1024);
                while Instant::now() < end {
                    if sent_total.load(Ordering::Acquire).saturating_sub(received_total.load(Ordering::Acquire))
                        > WINDOW
                    {
                        thread::sleep(Duration::from_micros(50));
                        continue;
                    }
                    batch.clear();
                    for _ in 0..32 {
                        publish_packet(&mut batch, &topic, &payload(sent));
                        sent += 1;
                    }
                    sent_total.fetch_add(32, Ordering::AcqRel);
                    if let Err(e) = s.write_all(&batch) {
                        return (sent - 32, Some(format!("publish: {e}")));
                    }
                }
                let _ = s.write_all(&DISCONNECT);
                (sent, None)
            })
        })
        .collect();
    let sub_done = done.clone();
    let received = received_total.clone();
    let reader = thread::spawn(move || -> (u64, u64, Option<String>) {
        let (mut in_window, mut total) = (0u64, 0u64);
        let mut last = Instant::now();
        let hard_end = end + Duration::from_secs(10);
        loop {
            match sub.next() {
                Ok(Some((first, _))) if first >> 4 == 3 => {
                    let now = Instant::now();
                    last = now;
                    total += 1;
                    received.fetch_add(1, Ordering::AcqRel);
                    if now <= end {
                        in_window += 1;
                    }
                }
                Ok(_) => {}
                Err(e) => return (in_window, total, Some(format!("subscriber: {e}"))),
            }
            let now = Instant::now();
            // Drained: publishers finished and nothing came for half a second.
            if (sub_done.load(Ordering::Acquire) && now.duration_since(last) > Duration::from_millis(500))
                || now > hard_end
            {
                break;
            }
        }
        let _ = sub.s.write_all(&DISCONNECT);
        (in_window, total, None)
    });
    let (mut sent, mut error) = (0, None);
    for h in handles {
        if let Ok((n, e)) = h.join() {
            sent += n;
            error = error.or(e);
        }
    }
    done.store(true, Ordering::Release);
    let Ok((in_window, received, e)) = reader.join() else {
        return fail("subscriber thread panicked".into());
    };
    MqttRun { rate: in_window as f64 / dur.as_secs_f64(), sent, received, error: error.or(e) }
}

/// Metric 3b: one message in flight at a time, publisher → broker → subscriber, both
/// through the proxy. Returns (p50 µs, p99 µs, error).
fn mqtt_latency(addr: SocketAddr, dur: Duration, topic: &str) -> (f64, f64, Option<String>) {
    let run = || -> io::Result<Vec<u64>> {
        let mut sub = mqtt_open(addr, "lsub")?;
        mqtt_subscribe(&mut sub, topic)?;
        let mut publ = mqtt_open(addr, "lpub")?;
        let mut lat = Vec::new();
        let end = Instant::now() + dur;
        let mut pkt = Vec::with_capacity(128);
        let mut seq = 0u64;
        while Instant::now() < end && lat.len() < 200_000 {
            pkt.clear();
            publish_packet(&mut pkt, topic, &payload(seq));
            publ.s.write_all(&pkt)?;
            let r = loop {
                let r = sub.expect(3, "PUBLISH")?;
                if field(publish_payload(sub.body(r.clone())), 8) == Some(seq) {
                    break r;
                }
            };
            if let Some(ts) = field(publish_payload(sub.body(r)), 0) {
                lat.push(now_ns().saturating_sub(ts));
            }
            seq += 1;
        }
        let _ = publ.s.write_all(&DISCONNECT);
        let _ = sub.s.write_all(&DISCONNECT);
        Ok(lat)
    };
    match run() {
        Ok(mut lat) => {
            lat.sort_unstable();
            (percentile(&lat, 0.5), percentile(&lat, 0.99), None)
        }
        Err(e) => (f64::NAN, f64::NAN, Some(e.to_string())),
    }
}

struct MemRun {
    before_kb: u64,
    after_kb: u64,
    per_conn: f64,
    opened: usize,
    alive: usize,
    error: Option<String>,
}

/// Metric 4: `n` MQTT connections through a fresh proxy, CONNECT each, wait, read the
/// proxy's VmRSS before and after. Then PINGREQ each (they must all still answer) and
/// DISCONNECT (the broker closes first, so TIME_WAIT does not eat our ephemeral ports).
fn idle_memory(proxy: &mut Proxy, n: usize) -> MemRun {
    thread::sleep(Duration::from_millis(300));
    let before_kb = proxy.proc.rss_kb().unwrap_or(0);
    let addr = proxy.addrs.mqtt;
    let mut error = None;
    let mut conns = open_mqtt_conns(addr, n, &mut error);
    let opened = conns.len();
    let connacked = answered(&mut conns, 2, "CONNACK", &mut error);
    thread::sleep(Duration::from_secs(1));
    let after_kb = proxy.proc.rss_kb().unwrap_or(0);
    let alive = close_idle(conns, &mut error);
    let per_conn =
        if connacked > 0 { (after_kb.saturating_sub(before_kb) * 1024) as f64 / connacked as f64 } else { f64::NAN };
    MemRun { before_kb, after_kb, per_conn, opened, alive, error }
}

// ---------------------------------------------------------------------------------------
// Targets

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Direct,
    Haproxy,
    Hapx,
}

const TARGETS: [Target; 3] = [Target::Direct, Target::Haproxy, Target::Hapx];

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Haproxy => "haproxy",
            Target::Hapx => "hapx",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy)]
struct Addrs {
    echo: SocketAddr,
    sink: SocketAddr,
    mqtt: SocketAddr,
}

struct Proxy {
    proc: Proc,
    addrs: Addrs,
}

/// The configuration both proxies run; only the ports differ.
fn proxy_config(front: &Addrs, back: &Addrs, maxconn: u64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "global\n    nbthread 1\n    maxconn {maxconn}\n\n\
         defaults\n    mode tcp\n    maxconn {maxconn}\n    timeout connect 5s\n    timeout client 5m\n    timeout server 5m\n\n"
    );
    for (name, f, b) in
        [("echo", front.echo, back.echo), ("sink", front.sink, back.sink), ("mqtt", front.mqtt, back.mqtt)]
    {
        let _ = write!(s, "listen {name}\n    bind {f}\n    balance roundrobin\n    server s1 {b}\n\n");
    }
    s
}

struct Env {
    dir: PathBuf,
    backends: Addrs,
    nofile: u64,
    maxconn: u64,
    haproxy: Option<PathBuf>,
}

fn start_proxy(env: &Env, target: Target, tag: &str) -> Result<Proxy, String> {
    let addrs = Addrs { echo: loopback(free_port()), sink: loopback(free_port()), mqtt: loopback(free_port()) };
    let cfg = env.dir.join(format!("{tag}.cfg"));
    std::fs::write(&cfg, proxy_config(&addrs, &env.backends, env.maxconn)).map_err(|e| e.to_string())?;
    let bin = match (target, &env.haproxy) {
        (Target::Hapx, _) => quote(&hapx_bin()),
        (_, Some(haproxy)) => quote(haproxy),
        (_, None) => return Err("haproxy not found".into()),
    };
    let mut proc =
        Proc::spawn(&format!("{bin} -db -f {}", quote(&cfg)), env.nofile, env.dir.join(format!("{tag}.log")))?;
    proc.wait_listening(&[addrs.echo, addrs.sink, addrs.mqtt])?;
    Ok(Proxy { proc, addrs })
}

// ---------------------------------------------------------------------------------------
// Results

#[derive(Clone, Copy, PartialEq)]
enum Better {
    Higher,
    Lower,
}

struct Row {
    name: String,
    better: Better,
    runs: [Vec<f64>; 3],
}

impl Row {
    fn new(name: &str, better: Better) -> Row {
        Row { name: name.into(), better, runs: [Vec::new(), Vec::new(), Vec::new()] }
    }
    fn push(&mut self, t: Target, v: f64) {
        self.runs[t.index()].push(v);
    }
    fn range(&self, t: Target) -> Option<(f64, f64)> {
        let v = self.runs[t.index()].iter().copied().filter(|x| x.is_finite());
        v.fold(None, |acc, x| match acc {
            None => Some((x, x)),
            Some((lo, hi)) => Some((x.min(lo), x.max(hi))),
        })
    }
    /// Whether hapx's runs and HAProxy's (scaled by `factor`) overlap: a miss that the
    /// noise of this machine could explain.
    fn overlap(&self, factor: f64) -> bool {
        match (self.range(Target::Haproxy), self.range(Target::Hapx)) {
            (Some((hlo, hhi)), Some((xlo, xhi))) => xlo <= hhi * factor && hlo * factor <= xhi,
            _ => false,
        }
    }
    fn median(&self, t: Target) -> f64 {
        median(&self.runs[t.index()])
    }
}

fn table(out: &mut String, title: &str, rows: &[&Row], show_direct: bool) {
    let _ = writeln!(out, "\n### {title}\n");
    let _ = writeln!(out, "| | direct | haproxy | hapx | hapx/haproxy | hapx/direct |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let [d, h, x] = TARGETS.map(|t| r.median(t));
        let d = if show_direct { d } else { f64::NAN };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            fmt_num(d),
            fmt_num(h),
            fmt_num(x),
            ratio(x, h),
            ratio(x, d)
        );
    }
    for r in rows {
        let runs: Vec<String> = TARGETS
            .iter()
            .filter(|t| show_direct || **t != Target::Direct)
            .map(|t| {
                format!(
                    "{} [{}]",
                    t.name(),
                    r.runs[t.index()].iter().map(|v| fmt_num(*v)).collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        let _ = writeln!(out, "\n<sub>{} runs: {}</sub>", r.name, runs.join("; "));
    }
}

/// Goal line: hapx's median against HAProxy's (times `factor`).
fn goal(out: &mut String, what: &str, row: &Row, factor: f64) {
    let (h, x) = (row.median(Target::Haproxy), row.median(Target::Hapx));
    let met = if !(h.is_finite() && x.is_finite()) {
        "not measured"
    } else if match row.better {
        Better::Higher => x >= h * factor,
        Better::Lower => x <= h * factor,
    } {
        "**met**"
    } else if row.overlap(factor) {
        "not met (within the run-to-run spread)"
    } else {
        "not met"
    };
    let _ = writeln!(out, "| {what} | {} | {} | {} | {met} |", fmt_num(h), fmt_num(x), ratio(x, h));
}

/// Whether the broker still runs; if not, says so once (with its log) and stops MQTT runs.
fn broker_alive(broker: &mut Option<Proc>, notes: &mut Vec<String>) -> bool {
    let Some(b) = broker.as_mut() else { return false };
    if let Some(why) = b.exited() {
        notes.push(format!("mosquitto {why}; later MQTT runs skipped; log tail:\n```\n{}\n```", b.log_tail()));
        *broker = None;
        return false;
    }
    true
}

fn err_note(notes: &mut Vec<String>, t: Target, what: &str, e: Option<String>) {
    if let Some(e) = e {
        notes.push(format!("{} {what}: {e}", t.name()));
    }
}

// ---------------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we do not support.
    let s = Settings::from_env();
    let started = Instant::now();
    now_ns();
    let mut notes: Vec<String> = Vec::new();
    // Notes that are settings, not problems (problems keep the logs for a look).
    let mut settings_notes = 0;

    let dir = std::env::temp_dir().join(format!("hapx-rbench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }

    // File descriptors: a proxy holds two per connection, the bench one.
    let (soft, hard) = nofile_limits();
    let nofile = hard.min(200_000);
    let maxconn = ((nofile.saturating_sub(100)) / 2).min(50_000);
    let conns = s.conns.min(soft.saturating_sub(200) as usize).min(maxconn.saturating_sub(50) as usize);
    if conns < s.conns {
        notes.push(format!(
            "idle connections scaled down from {} to {conns}: open-file limit {soft} (soft) / {hard} (hard) here, \
             and a proxy needs two descriptors per connection (proxies get `ulimit -n {nofile}`, `maxconn {maxconn}`)",
            s.conns
        ));
        settings_notes += 1;
    }

    let echo = start_echo();
    let sink = start_sink();
    let (Ok(echo), Ok(sink)) = (echo, sink) else {
        eprintln!("cannot start the echo or sink server");
        std::process::exit(1);
    };

    // The broker.
    let mut broker = None;
    let mut mosq = loopback(free_port());
    match start_mosquitto(&dir, nofile) {
        Ok((p, addr)) => (broker, mosq) = (Some(p), addr),
        Err(e) => notes.push(format!("mosquitto did not start ({e}): MQTT metrics skipped")),
    }
    let mqtt_on = broker.is_some();

    let haproxy = haproxy_bin();
    let have_haproxy = haproxy.is_some();
    let env = Env { dir: dir.clone(), backends: Addrs { echo, sink, mqtt: mosq }, nofile, maxconn, haproxy };
    if !have_haproxy {
        notes.push("haproxy not found: only direct and hapx are measured".into());
    }
    let mut proxies: [Option<Proxy>; 3] = [None, None, None];
    for t in [Target::Haproxy, Target::Hapx] {
        if t == Target::Haproxy && !have_haproxy {
            continue;
        }
        match start_proxy(&env, t, t.name()) {
            Ok(p) => proxies[t.index()] = Some(p),
            Err(e) => notes.push(format!("{} did not start: {e}", t.name())),
        }
    }
    let direct = Addrs { echo, sink, mqtt: mosq };
    let addrs_of = |proxies: &mut [Option<Proxy>; 3], t: Target, notes: &mut Vec<String>| -> Option<Addrs> {
        if t == Target::Direct {
            return Some(direct);
        }
        let p = proxies[t.index()].as_mut()?;
        if let Some(why) = p.proc.exited() {
            notes.push(format!("{} {why} during the run; log tail:\n```\n{}\n```", t.name(), p.proc.log_tail()));
            proxies[t.index()] = None;
            return None;
        }
        Some(p.addrs)
    };
    let order = |round: usize| {
        let mut o = TARGETS;
        o.rotate_left(round % 3);
        o
    };
    // 1. Connection rate.
    eprintln!("[1/4] connection rate (at {:.0} s)", started.elapsed().as_secs_f64());
    let mut rate = Row::new("connections/s", Better::Higher);
    let mut rate_err = Row::new("failed connections", Better::Lower);
    for r in 0..s.rounds {
        for t in order(r) {
            let Some(a) = addrs_of(&mut proxies, t, &mut notes) else { continue };
            let (v, errs, first) = conn_rate(a.echo, s.clients, s.run_time());
            rate.push(t, v);
            rate_err.push(t, errs as f64);
            err_note(&mut notes, t, "connection-rate error", first);
            thread::sleep(Duration::from_millis(200));
        }
    }

    // 2. Bulk throughput.
    eprintln!("[2/4] bulk throughput (at {:.0} s)", started.elapsed().as_secs_f64());
    let mut gbps = Row::new("Gbit/s", Better::Higher);
    for r in 0..s.rounds {
        for t in order(r) {
            let Some(a) = addrs_of(&mut proxies, t, &mut notes) else { continue };
            let (v, e) = bulk(a.sink, s.streams, s.bulk_bytes);
            gbps.push(t, if e.is_some() { f64::NAN } else { v });
            err_note(&mut notes, t, "bulk error", e);
        }
    }

    // 3. MQTT rate and latency.
    let mut mrate = Row::new("messages/s delivered", Better::Higher);
    let mut mloss = Row::new("messages lost (%)", Better::Lower);
    let mut lp50 = Row::new("latency p50, one in flight (µs)", Better::Lower);
    let mut lp99 = Row::new("latency p99, one in flight (µs)", Better::Lower);
    if mqtt_on {
        eprintln!("[3/4] MQTT rate and latency (at {:.0} s)", started.elapsed().as_secs_f64());
        for r in 0..s.rounds {
            for t in order(r) {
                if !broker_alive(&mut broker, &mut notes) {
                    break;
                }
                let Some(a) = addrs_of(&mut proxies, t, &mut notes) else { continue };
                let run = mqtt_rate(a.mqtt, s.publishers, s.run_time(), &format!("bench/rate/{r}/{}", t.name()));
                mrate.push(t, run.rate);
                let lost = if run.sent > 0 {
                    100.0 * run.sent.saturating_sub(run.received) as f64 / run.sent as f64
                } else {
                    f64::NAN
                };
                mloss.push(t, lost);
                err_note(&mut notes, t, "MQTT rate error", run.error);
                let (p50, p99, e) = mqtt_latency(a.mqtt, s.run_time() / 2, &format!("bench/lat/{r}/{}", t.name()));
                lp50.push(t, p50);
                lp99.push(t, p99);
                err_note(&mut notes, t, "MQTT latency error", e);
            }
        }
    }
    // The long-running proxies are not needed any more; the memory runs use fresh ones.
    for p in proxies.iter_mut() {
        *p = None;
    }

    // 4. Memory per idle connection, fresh proxies.
    let mut mem = Row::new("bytes per idle connection", Better::Lower);
    let mut mem_before = Row::new("VmRSS before (KiB)", Better::Lower);
    let mut mem_after = Row::new(&format!("VmRSS with {conns} idle (KiB)"), Better::Lower);
    if mqtt_on {
        eprintln!(
            "[4/4] memory per idle connection ({conns} connections) (at {:.0} s)",
            started.elapsed().as_secs_f64()
        );
        for r in 0..s.rounds {
            for t in order(r) {
                if t == Target::Direct || (t == Target::Haproxy && !have_haproxy) {
                    continue;
                }
                if !broker_alive(&mut broker, &mut notes) {
                    break;
                }
                let mut p = match start_proxy(&env, t, &format!("{}-mem{r}", t.name())) {
                    Ok(p) => p,
                    Err(e) => {
                        notes.push(format!("{} (memory run) did not start: {e}", t.name()));
                        continue;
                    }
                };
                let m = idle_memory(&mut p, conns);
                if m.opened < conns || m.alive < conns {
                    notes.push(format!(
                        "{} memory run {r}: {} of {conns} connections opened, {} answered PINGREQ",
                        t.name(),
                        m.opened,
                        m.alive
                    ));
                }
                err_note(&mut notes, t, "memory-run error", m.error);
                if let Some(why) = p.proc.exited() {
                    notes.push(format!(
                        "{} {why} during memory run; log tail:\n```\n{}\n```",
                        t.name(),
                        p.proc.log_tail()
                    ));
                }
                mem.push(t, m.per_conn);
                mem_before.push(t, m.before_kb as f64);
                mem_after.push(t, m.after_kb as f64);
            }
        }
    }
    drop(broker);

    // Report (markdown, pasted as is into benches/README.md).
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Settings: {} rounds, interleaved (order rotates), medians; {} s per timed run; {} client threads; \
         {} bulk streams × {} MiB total; {} MQTT publishers, QoS 0, 64-byte payload, at most {WINDOW} messages in flight; {conns} idle connections; \
         `nbthread 1` for both proxies; {} CPUs; bench run took {:.0} s.",
        s.rounds,
        s.seconds,
        s.clients,
        s.streams,
        s.bulk_bytes / (1024 * 1024),
        s.publishers,
        thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64()
    );
    table(&mut out, "1. New connections (connect, 1 byte, echo, close)", &[&rate, &rate_err], true);
    table(&mut out, "2. Bulk throughput (to a sink)", &[&gbps], true);
    if mqtt_on {
        table(
            &mut out,
            "3. MQTT through mosquitto (publishers and subscriber both via the proxy)",
            &[&mrate, &mloss, &lp50, &lp99],
            true,
        );
        table(
            &mut out,
            "4. Resident memory per idle MQTT connection (proxy VmRSS)",
            &[&mem, &mem_before, &mem_after],
            false,
        );
    }
    let _ =
        writeln!(out, "\n### Goals\n\n| goal | haproxy | hapx | hapx/haproxy | verdict |\n|---|---:|---:|---:|---|");
    goal(&mut out, "connection rate ≥ HAProxy", &rate, 1.0);
    goal(&mut out, "bulk throughput ≥ HAProxy", &gbps, 1.0);
    if mqtt_on {
        goal(&mut out, "MQTT messages/s ≥ HAProxy", &mrate, 1.0);
        goal(&mut out, "MQTT latency p50 (one in flight) ≤ HAProxy", &lp50, 1.0);
        goal(&mut out, "MQTT latency p99 (one in flight) ≤ HAProxy", &lp99, 1.0);
        goal(&mut out, "memory per idle connection ≤ ½ HAProxy", &mem, 0.5);
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\n### Notes\n");
        for n in &notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    println!("{out}");
    if notes.len() == settings_notes {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("configurations and logs kept in {}", dir.display());
    }
}
