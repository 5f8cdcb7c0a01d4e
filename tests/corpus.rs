//! `hapx -c --target-version 2.6` on every real-world config of testdata/corpus/real,
//! compared with HAProxy 2.6's verdicts (`NNNN.expect`), in the conditions those were made:
//! from inside the folder, an empty environment, and no name resolution (a private
//! /etc/resolv.conf naming 127.0.0.1, when `unshare -m` is permitted).
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{no_dns_wrapper, normalize_line};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus/real")
}

struct Expect {
    exit: i32,
    /// Every [ALERT] line, normalized as the oracle normalizes them.
    alerts: Vec<String>,
}

fn parse_expect(text: &str) -> Expect {
    let mut lines = text.lines();
    let exit = lines.next().and_then(|l| l.strip_prefix("exit ")).and_then(|n| n.trim().parse().ok()).unwrap_or(-1);
    let alerts = lines.filter(|l| l.starts_with("[ALERT]")).map(str::to_string).collect();
    Expect { exit, alerts }
}

/// The `file:line` inside the first `[...]` of a normalized line, if it has one.
fn location(line: &str) -> Option<String> {
    let rest = line.get(7..)?;
    let start = rest.find('[')?;
    let end = rest[start..].find(']')? + start;
    let loc = &rest[start + 1..end];
    let (file, num) = loc.rsplit_once(':')?;
    num.parse::<u32>().ok()?;
    Some(format!("{file}:{num}"))
}

fn known_differences() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus-known-differences.txt");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn corpus_verdicts_match_haproxy_2_6() {
    let dir = corpus_dir();
    let wrap = no_dns_wrapper();
    let known = known_differences();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("testdata/corpus/real")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cfg"))
        .collect();
    names.sort();
    assert!(names.len() >= 231, "corpus has {} files", names.len());
    let (mut exit_mismatch, mut expected_alerts, mut matched_alerts) = (Vec::new(), 0usize, 0usize);
    let mut missed = Vec::new();
    let mut unexplained: Vec<String> = Vec::new();
    let mut explained_used: BTreeSet<String> = BTreeSet::new();
    for name in &names {
        let expect_text = std::fs::read_to_string(dir.join(name.replace(".cfg", ".expect"))).expect("expect file");
        let expect = parse_expect(&expect_text);
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg("env");
                c
            }
            None => Command::new("env"),
        };
        cmd.args(["-i", "PATH=/usr/sbin:/usr/bin:/bin", "HOME=/tmp"]);
        cmd.arg(env!("CARGO_BIN_EXE_hapx")).args(["-c", "--target-version", "2.6", "-f", name]).current_dir(&dir);
        let out = cmd.output().expect("run hapx");
        let code = out.status.code().unwrap_or(-1);
        if code != expect.exit {
            exit_mismatch.push(format!("{name}: hapx exit {code}, haproxy exit {}", expect.exit));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let got_lines: BTreeSet<String> = stderr.lines().filter_map(normalize_line).collect();
        let got_locations: BTreeSet<String> =
            got_lines.iter().filter(|l| l.starts_with("[ALERT]")).filter_map(|l| location(l)).collect();
        for line in &expect.alerts {
            let loc = location(line);
            if let Some(loc) = &loc {
                expected_alerts += 1;
                if got_locations.contains(loc) {
                    matched_alerts += 1;
                } else {
                    missed.push(loc.clone());
                }
            }
            if !got_lines.contains(line) {
                let key = loc.unwrap_or_else(|| format!("{name}:closing"));
                if known.contains(&key) {
                    explained_used.insert(key);
                } else {
                    unexplained.push(line.clone());
                }
            }
        }
    }
    let ratio = matched_alerts as f64 / expected_alerts.max(1) as f64;
    eprintln!(
        "corpus: {} files, exit codes agree on {}, located alerts on the same file:line {matched_alerts}/{expected_alerts} ({:.1}%), alert lines differing in text (listed in known differences): {}",
        names.len(),
        names.len() - exit_mismatch.len(),
        ratio * 100.0,
        explained_used.len()
    );
    for m in &missed {
        eprintln!("  alert not reproduced at {m}");
    }
    assert!(exit_mismatch.is_empty(), "exit codes differ:\n{}", exit_mismatch.join("\n"));
    assert!(ratio >= 0.95, "only {:.1}% of HAProxy's located alerts reproduced", ratio * 100.0);
    assert!(
        unexplained.is_empty(),
        "HAProxy alerts not reproduced word for word and not in testdata/corpus-known-differences.txt:\n{}",
        unexplained.join("\n")
    );
    let stale: Vec<&String> = known.iter().filter(|k| !explained_used.contains(*k)).collect();
    assert!(stale.is_empty(), "known differences that no longer differ (remove them): {stale:?}");
}
