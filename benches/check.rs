//! `hapx -c` against `haproxy -c` on the same generated configuration (5,000 backends × 4
//! servers with checks), side by side in one run. Reports medians and their ratio; the
//! machines are shared and noisy, so only the ratio means something.
//!
//! Run: `cargo bench --bench check` (needs `haproxy` on PATH; without it only hapx is timed).
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BACKENDS: usize = 5_000;
const SERVERS: usize = 4;
const ROUNDS: usize = 7;

fn generate(path: &Path) {
    let mut s = String::with_capacity(BACKENDS * 300);
    s.push_str("global\n    maxconn 20000\n\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 50s\n    timeout server 50s\n\n");
    s.push_str("frontend fe\n    bind 127.0.0.1:18080\n    default_backend be0\n\n");
    for b in 0..BACKENDS {
        let _ = writeln!(s, "backend be{b}\n    balance leastconn\n    option tcp-check");
        for i in 0..SERVERS {
            let n = b * SERVERS + i;
            let _ = writeln!(
                s,
                "    server s{i} 10.{}.{}.{}:1883 check inter 2s rise 2 fall 3 weight 10",
                (n >> 16) & 255,
                (n >> 8) & 255,
                n & 255
            );
        }
        s.push('\n');
    }
    if let Err(e) = std::fs::write(path, s) {
        eprintln!("cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
}

/// Runs `bin -c -f cfg` and returns its wall time, or None if it could not run.
fn time_once(bin: &str, extra: &[&str], cfg: &Path) -> Option<Duration> {
    let start = Instant::now();
    let status = Command::new(bin)
        .args(extra)
        .arg("-c")
        .arg("-q")
        .arg("-f")
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let elapsed = start.elapsed();
    matches!(status.code(), Some(0)).then_some(elapsed)
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort();
    v.get(v.len() / 2).copied()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("hapx-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let cfg = dir.join("big.cfg");
    generate(&cfg);
    let hapx = env!("CARGO_BIN_EXE_hapx");
    let haproxy_ok =
        Command::new("haproxy").arg("-v").stdout(Stdio::null()).status().map(|s| s.success()).unwrap_or(false);
    let (mut t_hapx, mut t_haproxy) = (Vec::new(), Vec::new());
    // Alternate the two so that noise hits both alike.
    for _ in 0..ROUNDS {
        match time_once(hapx, &["--target-version", "2.6"], &cfg) {
            Some(t) => t_hapx.push(t),
            None => {
                eprintln!("hapx -c failed on the generated config");
                std::process::exit(1);
            }
        }
        if haproxy_ok {
            if let Some(t) = time_once("haproxy", &[], &cfg) {
                t_haproxy.push(t);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mh = median(t_hapx).unwrap_or_default();
    println!("config: {BACKENDS} backends x {SERVERS} servers with checks, {ROUNDS} rounds, medians");
    println!("hapx -c     {:>9.1} ms", mh.as_secs_f64() * 1e3);
    match median(t_haproxy) {
        Some(mp) => {
            println!("haproxy -c  {:>9.1} ms", mp.as_secs_f64() * 1e3);
            println!("ratio hapx/haproxy = {:.3} (goal: <= 0.5)", mh.as_secs_f64() / mp.as_secs_f64());
        }
        None => println!("haproxy not available: no ratio"),
    }
}
