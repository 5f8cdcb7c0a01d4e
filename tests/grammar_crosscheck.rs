//! grammar/ against the shared reference tables: every reference row is in our grammar or
//! listed in grammar/DIFFERENCES.md with a reason, and everything in our grammar comes
//! from a reference row (or is listed there too).
use hapx::grammar::{grammar, SampleKind};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

type Key = (String, String, String); // (file, section or "-", name)

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Data rows of a reference TSV, header dropped.
fn reference_rows(dir: &Path, file: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    text.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

fn key(file: &str, section: &str, name: &str) -> Key {
    (file.to_string(), section.to_string(), name.to_string())
}

fn reference_keys(dir: &Path) -> BTreeSet<Key> {
    let mut keys = BTreeSet::new();
    for r in reference_rows(dir, "keywords.tsv") {
        if let [section, kw, ..] = r.as_slice() {
            keys.insert(key("keywords", section, kw));
        }
    }
    for r in reference_rows(dir, "sections.tsv") {
        if let Some(s) = r.first() {
            keys.insert(key("sections", s, "-"));
        }
    }
    for (file, ours) in [
        ("bind-options.tsv", "bind-options"),
        ("server-options.tsv", "server-options"),
        ("balance.tsv", "balance"),
        ("acl-fetches.tsv", "fetches"),
    ] {
        for r in reference_rows(dir, file) {
            if let Some(name) = r.first() {
                keys.insert(key(ours, "-", name));
            }
        }
    }
    keys
}

fn our_keys() -> BTreeSet<Key> {
    let g = grammar();
    let mut keys = BTreeSet::new();
    for k in g.all_keywords().filter(|k| !k.family) {
        for s in &k.sections {
            keys.insert(key("keywords", s.name(), k.name));
        }
    }
    for s in g.all_sections() {
        keys.insert(key("sections", s.name, "-"));
    }
    for o in g.all_bind_options() {
        keys.insert(key("bind-options", "-", o.name));
    }
    for o in g.all_server_options() {
        keys.insert(key("server-options", "-", o.name));
    }
    for b in g.all_balances() {
        keys.insert(key("balance", "-", b.name));
    }
    for s in g.all_samples() {
        keys.insert(key("fetches", "-", s.name));
    }
    keys
}

/// (file, section, name) rows listed in DIFFERENCES.md, each with a non-empty reason.
fn differences() -> BTreeSet<Key> {
    let text = std::fs::read_to_string(manifest().join("grammar/DIFFERENCES.md")).expect("grammar/DIFFERENCES.md");
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if let [file, section, name, reason] = cols.as_slice() {
            assert!(!reason.trim().is_empty(), "no reason given: {line}");
            let name = if *file == "sections" { "-" } else { name };
            let section = if *file == "sections" { *section } else { section };
            keys.insert(key(file, section, name));
        }
    }
    keys
}

#[test]
fn grammar_matches_reference_tables() {
    let dir = manifest().join("../shared/reference");
    if !dir.is_dir() {
        println!("note: {} absent, cross-check skipped", dir.display());
        return;
    }
    let theirs = reference_keys(&dir);
    let ours = our_keys();
    let listed = differences();

    let missing: Vec<_> = theirs.iter().filter(|k| !ours.contains(*k) && !listed.contains(*k)).collect();
    assert!(missing.is_empty(), "reference rows absent from grammar/ and not in DIFFERENCES.md: {missing:#?}");
    let extra: Vec<_> = ours.iter().filter(|k| !theirs.contains(*k) && !listed.contains(*k)).collect();
    assert!(extra.is_empty(), "grammar/ rows with no reference row and not in DIFFERENCES.md: {extra:#?}");
    let stale: Vec<_> = listed.iter().filter(|k| !theirs.contains(*k) && !ours.contains(*k)).collect();
    assert!(stale.is_empty(), "DIFFERENCES.md lists unknown rows: {stale:#?}");
    let both: Vec<_> = listed.iter().filter(|k| theirs.contains(*k) && ours.contains(*k)).collect();
    assert!(both.is_empty(), "DIFFERENCES.md lists rows that match: {both:#?}");
}

#[test]
fn converters_and_fetches_are_told_apart() {
    let g = grammar();
    assert!(g.all_samples().any(|s| s.kind == SampleKind::Converter && s.name == "mqtt_field_value"));
    assert!(g.all_samples().any(|s| s.kind == SampleKind::Fetch && s.name == "req.payload"));
}

/// Every "unknown keyword"/"unknown option" alert of HAProxy 2.6 in the corpus: the
/// registry must not know the word in 2.6, and must offer the same did-you-mean.
#[test]
fn corpus_unknown_words_agree_with_haproxy_26() {
    use hapx::grammar::{KeywordLookup, SectionKind};
    use hapx::version::Version;
    let dir = manifest().join("../shared/corpus/real");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("note: {} absent, corpus check skipped", dir.display());
        return;
    };
    let g = grammar();
    let v = Version::new(2, 6);
    let quoted = |s: &str| -> Vec<String> { s.split('\'').skip(1).step_by(2).map(str::to_string).collect() };
    let mut checked = 0;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("expect") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            let Some((_, msg)) = line.split_once("] : ") else {
                continue;
            };
            let q = quoted(msg);
            if msg.starts_with("unknown keyword '") && msg.contains(" section") && !msg.contains("out of section") {
                let (Some(word), Some(sec)) = (q.first(), q.get(1)) else {
                    continue;
                };
                let Some(kind) = SectionKind::from_name(sec) else {
                    continue;
                };
                if g.section(word, v).is_some() {
                    continue;
                }
                assert!(
                    !matches!(g.keyword(kind, word, v), KeywordLookup::Known(_)),
                    "{}: '{word}' known in {sec}",
                    path.display()
                );
                if kind == SectionKind::Global || kind.is_proxy() {
                    let want = q.get(2).map(String::as_str);
                    assert_eq!(g.suggest_keyword(kind, word, v), want, "{line}");
                }
                checked += 1;
            } else if msg.starts_with("unknown option '") {
                let Some(word) = q.first() else { continue };
                let want = q.get(1).map(String::as_str);
                assert_eq!(g.suggest_option(word, v), want, "{line}");
                checked += 1;
            }
        }
    }
    println!("{checked} corpus alerts checked");
}
