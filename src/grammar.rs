//! The keyword registry: HAProxy's configuration language as data.
//!
//! Everything here is read from the tab-separated files in `grammar/` (embedded with
//! `include_str!` and parsed once). The files say which sections and keywords exist in
//! which HAProxy branch (2.6 through 3.4), where each keyword is legal, the shape of its
//! arguments, and what HAProxy says about keywords it removed. This module only answers
//! questions; it never reports diagnostics itself.
use crate::version::Version;
use std::collections::HashMap;
use std::sync::OnceLock;

const SECTIONS_TSV: &str = include_str!("../grammar/sections.tsv");
const KEYWORDS_TSV: &str = include_str!("../grammar/keywords.tsv");
const BIND_TSV: &str = include_str!("../grammar/bind-options.tsv");
const SERVER_TSV: &str = include_str!("../grammar/server-options.tsv");
const BALANCE_TSV: &str = include_str!("../grammar/balance.tsv");
const FETCHES_TSV: &str = include_str!("../grammar/fetches.tsv");
const SUGGEST_TSV: &str = include_str!("../grammar/suggest-extra.tsv");

/// The kinds of configuration sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SectionKind {
    Global,
    Defaults,
    Frontend,
    Backend,
    Listen,
    Resolvers,
    Peers,
    Userlist,
    Mailers,
    Program,
    HttpErrors,
    Ring,
    LogForward,
    Cache,
    FcgiApp,
    CrtStore,
    Traces,
    LogProfile,
    Acme,
    Healthcheck,
    NamespaceList,
}

impl SectionKind {
    pub const ALL: [SectionKind; 21] = [
        SectionKind::Global,
        SectionKind::Defaults,
        SectionKind::Frontend,
        SectionKind::Backend,
        SectionKind::Listen,
        SectionKind::Resolvers,
        SectionKind::Peers,
        SectionKind::Userlist,
        SectionKind::Mailers,
        SectionKind::Program,
        SectionKind::HttpErrors,
        SectionKind::Ring,
        SectionKind::LogForward,
        SectionKind::Cache,
        SectionKind::FcgiApp,
        SectionKind::CrtStore,
        SectionKind::Traces,
        SectionKind::LogProfile,
        SectionKind::Acme,
        SectionKind::Healthcheck,
        SectionKind::NamespaceList,
    ];

    /// The section keyword as written in a configuration.
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Global => "global",
            SectionKind::Defaults => "defaults",
            SectionKind::Frontend => "frontend",
            SectionKind::Backend => "backend",
            SectionKind::Listen => "listen",
            SectionKind::Resolvers => "resolvers",
            SectionKind::Peers => "peers",
            SectionKind::Userlist => "userlist",
            SectionKind::Mailers => "mailers",
            SectionKind::Program => "program",
            SectionKind::HttpErrors => "http-errors",
            SectionKind::Ring => "ring",
            SectionKind::LogForward => "log-forward",
            SectionKind::Cache => "cache",
            SectionKind::FcgiApp => "fcgi-app",
            SectionKind::CrtStore => "crt-store",
            SectionKind::Traces => "traces",
            SectionKind::LogProfile => "log-profile",
            SectionKind::Acme => "acme",
            SectionKind::Healthcheck => "healthcheck",
            SectionKind::NamespaceList => "namespace_list",
        }
    }

    pub fn from_name(name: &str) -> Option<SectionKind> {
        SectionKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// defaults, frontend, listen and backend: the sections HAProxy parses as proxies.
    pub fn is_proxy(self) -> bool {
        matches!(self, SectionKind::Defaults | SectionKind::Frontend | SectionKind::Listen | SectionKind::Backend)
    }
}

/// The type of one argument word in an [`ArgShape`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    Int,
    Time,
    Size,
    Name,
    Str,
    Addr,
    File,
    Fmt,
    Expr,
    /// `if`/`unless` and an ACL condition: the rest of the line.
    Cond,
}

impl ArgType {
    fn parse(text: &str) -> Option<ArgType> {
        Some(match text {
            "int" => ArgType::Int,
            "time" => ArgType::Time,
            "size" => ArgType::Size,
            "name" => ArgType::Name,
            "str" => ArgType::Str,
            "addr" => ArgType::Addr,
            "file" => ArgType::File,
            "fmt" => ArgType::Fmt,
            "expr" => ArgType::Expr,
            "cond" => ArgType::Cond,
            _ => return None,
        })
    }

    /// A cheap format check of one word (units as HAProxy accepts them). Types without a
    /// fixed format accept any word.
    pub fn accepts(self, word: &str) -> bool {
        match self {
            ArgType::Int => digits_then(word.strip_prefix('-').unwrap_or(word)) == Some(""),
            // Time units are lowercase only; size units are case-insensitive.
            ArgType::Time => matches!(digits_then(word), Some("" | "us" | "ms" | "s" | "m" | "h" | "d")),
            ArgType::Size => matches!(digits_then(word), Some("" | "k" | "K" | "m" | "M" | "g" | "G")),
            ArgType::Cond => word == "if" || word == "unless",
            _ => true,
        }
    }
}

/// The text after a non-empty run of leading digits.
fn digits_then(word: &str) -> Option<&str> {
    let n = word.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        None
    } else {
        word.get(n..)
    }
}

/// One element of an argument shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeItem {
    Typed(ArgType),
    Literal(&'static str),
    Optional(Vec<ShapeItem>),
    /// Exactly one of the alternatives (an alternative may be empty, written `-`).
    OneOf(Vec<Vec<ShapeItem>>),
    /// Any number of further words.
    Rest,
}

/// The arguments a keyword takes, in the small language described in grammar/keywords.tsv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgShape {
    pub text: &'static str,
    pub items: Vec<ShapeItem>,
}

impl ArgShape {
    fn parse(text: &'static str) -> Result<ArgShape, String> {
        let words: Vec<&'static str> = text.split_whitespace().collect();
        if words == ["-"] {
            return Ok(ArgShape { text, items: Vec::new() });
        }
        let mut pos = 0;
        let items = parse_seq(&words, &mut pos, &[])?;
        if pos != words.len() {
            return Err(format!("unexpected '{}' in shape '{text}'", words[pos]));
        }
        Ok(ArgShape { text, items })
    }

    /// Fewest argument words the keyword needs.
    pub fn min_args(&self) -> usize {
        seq_bounds(&self.items).0
    }

    /// Most argument words the keyword takes (`None`: no limit).
    pub fn max_args(&self) -> Option<usize> {
        seq_bounds(&self.items).1
    }
}

fn parse_seq(words: &[&'static str], pos: &mut usize, stops: &[&str]) -> Result<Vec<ShapeItem>, String> {
    let mut items = Vec::new();
    while let Some(&w) = words.get(*pos) {
        if stops.contains(&w) {
            break;
        }
        *pos += 1;
        let item = match w {
            "[" => {
                let inner = parse_seq(words, pos, &["]"])?;
                expect(words, pos, "]")?;
                ShapeItem::Optional(inner)
            }
            "{" => {
                let mut alts = Vec::new();
                loop {
                    if words.get(*pos) == Some(&"-") {
                        *pos += 1;
                        alts.push(Vec::new());
                    } else {
                        alts.push(parse_seq(words, pos, &["|", "}"])?);
                    }
                    match words.get(*pos) {
                        Some(&"|") => *pos += 1,
                        _ => break,
                    }
                }
                expect(words, pos, "}")?;
                ShapeItem::OneOf(alts)
            }
            "..." => ShapeItem::Rest,
            "]" | "}" | "|" => return Err(format!("stray '{w}'")),
            _ if w.starts_with('<') => {
                let ty = w
                    .strip_prefix('<')
                    .and_then(|t| t.strip_suffix('>'))
                    .and_then(ArgType::parse)
                    .ok_or_else(|| format!("unknown argument type '{w}'"))?;
                ShapeItem::Typed(ty)
            }
            _ => ShapeItem::Literal(w),
        };
        items.push(item);
    }
    Ok(items)
}

fn expect(words: &[&str], pos: &mut usize, want: &str) -> Result<(), String> {
    if words.get(*pos) == Some(&want) {
        *pos += 1;
        Ok(())
    } else {
        Err(format!("expected '{want}'"))
    }
}

fn seq_bounds(items: &[ShapeItem]) -> (usize, Option<usize>) {
    items.iter().fold((0, Some(0)), |(lo, hi), item| {
        let (ilo, ihi) = item_bounds(item);
        (lo + ilo, hi.zip(ihi).map(|(a, b)| a + b))
    })
}

fn item_bounds(item: &ShapeItem) -> (usize, Option<usize>) {
    match item {
        ShapeItem::Typed(ArgType::Cond) => (2, None),
        ShapeItem::Typed(_) | ShapeItem::Literal(_) => (1, Some(1)),
        ShapeItem::Optional(inner) => (0, seq_bounds(inner).1),
        ShapeItem::OneOf(alts) => {
            let bounds: Vec<_> = alts.iter().map(|a| seq_bounds(a)).collect();
            let lo = bounds.iter().map(|b| b.0).min().unwrap_or(0);
            let hi = bounds.iter().try_fold(0, |acc, b| b.1.map(|h| acc.max(h)));
            (lo, hi)
        }
        ShapeItem::Rest => (0, None),
    }
}

/// A section keyword.
#[derive(Debug)]
pub struct SectionInfo {
    pub kind: SectionKind,
    pub name: &'static str,
    pub header: ArgShape,
    pub since: Version,
    pub removed: Option<Version>,
}

/// One keyword row: a keyword and the sections where it is legal, for a range of versions.
/// A multi-word family (`timeout`, `option`, `tcp-request`, ...) also has a synthetic
/// entry for its first word, with `family` set and `args` accepting anything.
#[derive(Debug)]
pub struct KeywordInfo {
    /// The full keyword, words separated by one space (`timeout client`).
    pub name: &'static str,
    pub sections: Vec<SectionKind>,
    pub args: ArgShape,
    pub since: Version,
    pub removed: Option<Version>,
    /// HAProxy's own text once removed: what follows `parsing [file:line]`, separator
    /// included (` : ` or `: `); `{arg1}` stands for the first argument.
    pub removed_message: Option<&'static str>,
    /// `no <keyword>` is accepted.
    pub negatable: bool,
    pub deprecated: Option<Version>,
    /// Needs `expose-experimental-directives`.
    pub experimental: bool,
    /// A build option (`openssl`, `quic`, `lua`, ...) the reference 2.6 build lacks.
    pub build: Option<&'static str>,
    /// Whether HAProxy's did-you-mean may offer it.
    pub suggest: bool,
    /// A synthetic entry standing for a multi-word family.
    pub family: bool,
}

impl KeywordInfo {
    fn exists_in(&self, v: Version) -> bool {
        self.since <= v && self.removed.is_none_or(|r| v < r)
    }

    /// The words after the first (`client` for `timeout client`), empty for one-word keywords.
    pub fn sub_words(&self) -> &'static str {
        self.name.split_once(' ').map_or("", |(_, rest)| rest)
    }
}

/// What the registry knows about a keyword in a section and a version.
#[derive(Debug)]
pub enum KeywordLookup<'a> {
    Known(&'a KeywordInfo),
    /// Removed, and HAProxy says so with this text (see [`KeywordInfo::removed_message`]).
    Removed {
        message: String,
    },
    /// Exists, but only from a later version.
    NotInVersion {
        since: Version,
    },
    /// Exists in this version, but not in this section.
    WrongSection {
        legal_in: Vec<SectionKind>,
    },
    Unknown,
}

/// Lookup result for options, algorithms, fetches and converters.
#[derive(Debug)]
pub enum Lookup<'a, T> {
    Known(&'a T),
    NotInVersion { since: Version },
    Unknown,
}

/// A `bind` or `server` line option.
#[derive(Debug)]
pub struct LineOption {
    pub name: &'static str,
    pub args: ArgShape,
    pub since: Version,
    pub removed: Option<Version>,
    pub needs_ssl: bool,
    pub quic: bool,
    pub experimental: bool,
    pub deprecated: Option<Version>,
    /// Accepted on `default-server` lines (server options only; always true for bind).
    pub default_server: bool,
    pub build: Option<&'static str>,
}

/// A `balance` algorithm.
#[derive(Debug)]
pub struct BalanceInfo {
    pub name: &'static str,
    pub args: ArgShape,
    pub since: Version,
    pub removed: Option<Version>,
    /// Proxy modes where the algorithm applies (`tcp`, `http`, `log`).
    pub modes: Vec<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleKind {
    Fetch,
    Converter,
}

/// A sample fetch or a converter.
#[derive(Debug)]
pub struct SampleInfo {
    pub name: &'static str,
    pub kind: SampleKind,
    /// The parenthesised argument list as HAProxy documents it (`-`: none).
    pub args: &'static str,
    pub since: Version,
    pub removed: Option<Version>,
    pub out_type: &'static str,
}

trait Versioned {
    fn since(&self) -> Version;
    fn removed(&self) -> Option<Version>;
}

macro_rules! versioned {
    ($($t:ty),*) => {$(
        impl Versioned for $t {
            fn since(&self) -> Version { self.since }
            fn removed(&self) -> Option<Version> { self.removed }
        }
    )*};
}
versioned!(LineOption, BalanceInfo, SampleInfo);

fn lookup_in<'a, T: Versioned>(rows: &'a [T], idx: Option<&Vec<usize>>, v: Version) -> Lookup<'a, T> {
    let rows: Vec<&T> = idx.into_iter().flatten().filter_map(|&i| rows.get(i)).collect();
    if let Some(r) = rows.iter().find(|r| r.since() <= v && r.removed().is_none_or(|x| v < x)) {
        return Lookup::Known(r);
    }
    match rows.iter().filter(|r| r.since() > v).map(|r| r.since()).min() {
        Some(since) => Lookup::NotInVersion { since },
        None => Lookup::Unknown,
    }
}

struct Extra {
    family: &'static str,
    word: &'static str,
    since: Version,
    removed: Option<Version>,
}

/// The registry. Obtain it with [`grammar()`].
pub struct Grammar {
    sections: Vec<SectionInfo>,
    keywords: Vec<KeywordInfo>,
    /// Full keyword name → rows.
    by_name: HashMap<&'static str, Vec<usize>>,
    /// First word of a multi-word family → its synthetic entry.
    families: HashMap<&'static str, usize>,
    /// Keyword rows (families excluded) by their first word, so a family lookup needs no scan.
    by_first_word: HashMap<&'static str, Vec<usize>>,
    bind: Vec<LineOption>,
    bind_idx: HashMap<&'static str, Vec<usize>>,
    server: Vec<LineOption>,
    server_idx: HashMap<&'static str, Vec<usize>>,
    balance: Vec<BalanceInfo>,
    balance_idx: HashMap<&'static str, Vec<usize>>,
    samples: Vec<SampleInfo>,
    fetch_idx: HashMap<&'static str, Vec<usize>>,
    conv_idx: HashMap<&'static str, Vec<usize>>,
    extras: Vec<Extra>,
}

/// The registry, parsed from grammar/ on first use.
pub fn grammar() -> &'static Grammar {
    static GRAMMAR: OnceLock<Grammar> = OnceLock::new();
    // Only our own embedded data is parsed here; the unit tests parse every file, so a
    // mistake in it fails `cargo test` instead of reaching a user.
    GRAMMAR.get_or_init(|| Grammar::load().unwrap_or_else(|e| panic!("grammar/: {e}")))
}

/// Data lines of a TSV file: comments and blank lines skipped, numbered for messages.
fn data_lines(text: &'static str) -> impl Iterator<Item = (usize, Vec<&'static str>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l.split('\t').collect()))
}

fn col<'a>(cols: &[&'a str], i: usize, file: &str, line: usize) -> Result<&'a str, String> {
    cols.get(i).copied().ok_or_else(|| format!("{file}:{line}: missing column {}", i + 1))
}

fn opt_str(s: &'static str) -> Option<&'static str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

fn version(s: &str, file: &str, line: usize) -> Result<Version, String> {
    Version::parse(s).ok_or_else(|| format!("{file}:{line}: bad version '{s}'"))
}

fn opt_version(s: &str, file: &str, line: usize) -> Result<Option<Version>, String> {
    if s == "-" {
        Ok(None)
    } else {
        version(s, file, line).map(Some)
    }
}

struct Flags {
    list: Vec<&'static str>,
}

impl Flags {
    fn new(s: &'static str) -> Flags {
        Flags { list: opt_str(s).map_or(Vec::new(), |s| s.split(',').collect()) }
    }
    fn has(&self, f: &str) -> bool {
        self.list.contains(&f)
    }
    fn value(&self, key: &str) -> Option<&'static str> {
        self.list.iter().find_map(|f| f.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

fn index<T>(rows: &[T], name: impl Fn(&T) -> &'static str) -> HashMap<&'static str, Vec<usize>> {
    let mut map: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        map.entry(name(r)).or_default().push(i);
    }
    map
}

impl Grammar {
    fn load() -> Result<Grammar, String> {
        let mut sections = Vec::new();
        for (n, c) in data_lines(SECTIONS_TSV) {
            let f = "sections.tsv";
            let name = col(&c, 0, f, n)?;
            sections.push(SectionInfo {
                kind: SectionKind::from_name(name).ok_or_else(|| format!("{f}:{n}: unknown section '{name}'"))?,
                name,
                header: ArgShape::parse(col(&c, 1, f, n)?).map_err(|e| format!("{f}:{n}: {e}"))?,
                since: version(col(&c, 2, f, n)?, f, n)?,
                removed: opt_version(col(&c, 3, f, n)?, f, n)?,
            });
        }

        let mut keywords = Vec::new();
        for (n, c) in data_lines(KEYWORDS_TSV) {
            let f = "keywords.tsv";
            let mut secs = Vec::new();
            for s in col(&c, 0, f, n)?.split(',') {
                secs.push(SectionKind::from_name(s).ok_or_else(|| format!("{f}:{n}: unknown section '{s}'"))?);
            }
            let flags = Flags::new(col(&c, 5, f, n)?);
            keywords.push(KeywordInfo {
                name: col(&c, 1, f, n)?,
                sections: secs,
                args: ArgShape::parse(col(&c, 2, f, n)?).map_err(|e| format!("{f}:{n}: {e}"))?,
                since: version(col(&c, 3, f, n)?, f, n)?,
                removed: opt_version(col(&c, 4, f, n)?, f, n)?,
                removed_message: opt_str(col(&c, 6, f, n)?),
                negatable: flags.has("neg"),
                deprecated: flags.value("deprecated").map(|d| version(d, f, n)).transpose()?,
                experimental: flags.has("experimental"),
                build: flags.value("build"),
                suggest: !flags.has("nosuggest"),
                family: false,
            });
        }
        let by_name = index(&keywords, |k| k.name);

        // One synthetic entry per multi-word family, spanning its members.
        let mut families: HashMap<&'static str, usize> = HashMap::new();
        let members: Vec<(&'static str, usize)> = keywords
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.name.split_once(' ').map(|(first, _)| (first, i)))
            .collect();
        for (first, i) in members {
            let (since, secs, build) = match keywords.get(i) {
                Some(k) => (k.since, k.sections.clone(), k.build),
                None => continue,
            };
            match families.get(first) {
                Some(&fi) => {
                    if let Some(fam) = keywords.get_mut(fi) {
                        fam.since = fam.since.min(since);
                        for s in secs {
                            if !fam.sections.contains(&s) {
                                fam.sections.push(s);
                            }
                        }
                        if build.is_none() {
                            fam.build = None;
                        }
                    }
                }
                None => {
                    families.insert(first, keywords.len());
                    keywords.push(KeywordInfo {
                        name: first,
                        sections: secs,
                        args: ArgShape { text: "...", items: vec![ShapeItem::Rest] },
                        since,
                        removed: None,
                        removed_message: None,
                        negatable: false,
                        deprecated: None,
                        experimental: false,
                        build,
                        suggest: true,
                        family: true,
                    });
                }
            }
        }

        let line_options = |text: &'static str, f: &str, server: bool| {
            let mut rows = Vec::new();
            for (n, c) in data_lines(text) {
                let flags = Flags::new(col(&c, 4, f, n)?);
                rows.push(LineOption {
                    name: col(&c, 0, f, n)?,
                    args: ArgShape::parse(col(&c, 1, f, n)?).map_err(|e| format!("{f}:{n}: {e}"))?,
                    since: version(col(&c, 2, f, n)?, f, n)?,
                    removed: opt_version(col(&c, 3, f, n)?, f, n)?,
                    needs_ssl: flags.has("ssl"),
                    quic: flags.has("quic"),
                    experimental: flags.has("experimental"),
                    deprecated: flags.value("deprecated").map(|d| version(d, f, n)).transpose()?,
                    default_server: !(server && flags.has("no-default-server")),
                    build: flags.value("build"),
                });
            }
            Ok::<_, String>(rows)
        };
        let bind = line_options(BIND_TSV, "bind-options.tsv", false)?;
        let server = line_options(SERVER_TSV, "server-options.tsv", true)?;

        let mut balance = Vec::new();
        for (n, c) in data_lines(BALANCE_TSV) {
            let f = "balance.tsv";
            let flags = Flags::new(col(&c, 4, f, n)?);
            balance.push(BalanceInfo {
                name: col(&c, 0, f, n)?,
                args: ArgShape::parse(col(&c, 1, f, n)?).map_err(|e| format!("{f}:{n}: {e}"))?,
                since: version(col(&c, 2, f, n)?, f, n)?,
                removed: opt_version(col(&c, 3, f, n)?, f, n)?,
                modes: flags.value("modes").map_or(Vec::new(), |m| m.split('+').collect()),
            });
        }

        let mut samples = Vec::new();
        for (n, c) in data_lines(FETCHES_TSV) {
            let f = "fetches.tsv";
            let kind = match col(&c, 1, f, n)? {
                "fetch" => SampleKind::Fetch,
                "conv" => SampleKind::Converter,
                k => return Err(format!("{f}:{n}: unknown kind '{k}'")),
            };
            samples.push(SampleInfo {
                name: col(&c, 0, f, n)?,
                kind,
                args: col(&c, 2, f, n)?,
                since: version(col(&c, 3, f, n)?, f, n)?,
                removed: opt_version(col(&c, 4, f, n)?, f, n)?,
                out_type: col(&c, 5, f, n)?,
            });
        }
        let mut fetch_idx: HashMap<&'static str, Vec<usize>> = HashMap::new();
        let mut conv_idx: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, s) in samples.iter().enumerate() {
            let idx = match s.kind {
                SampleKind::Fetch => &mut fetch_idx,
                SampleKind::Converter => &mut conv_idx,
            };
            idx.entry(s.name).or_default().push(i);
        }

        let mut extras = Vec::new();
        for (n, c) in data_lines(SUGGEST_TSV) {
            let f = "suggest-extra.tsv";
            extras.push(Extra {
                family: col(&c, 0, f, n)?,
                word: col(&c, 1, f, n)?,
                since: version(col(&c, 2, f, n)?, f, n)?,
                removed: opt_version(col(&c, 3, f, n)?, f, n)?,
            });
        }

        let mut by_first_word: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, k) in keywords.iter().enumerate().filter(|(_, k)| !k.family) {
            let first = k.name.split(' ').next().unwrap_or(k.name);
            by_first_word.entry(first).or_default().push(i);
        }
        Ok(Grammar {
            sections,
            by_name,
            by_first_word,
            families,
            bind_idx: index(&bind, |o| o.name),
            server_idx: index(&server, |o| o.name),
            balance_idx: index(&balance, |b| b.name),
            keywords,
            bind,
            server,
            balance,
            samples,
            fetch_idx,
            conv_idx,
            extras,
        })
    }

    /// The section that `word` opens in version `v`, if it is a section keyword there.
    pub fn section(&self, word: &str, v: Version) -> Option<&SectionInfo> {
        self.sections.iter().find(|s| s.name == word && s.since <= v && s.removed.is_none_or(|r| v < r))
    }

    /// All section keywords, whatever their versions.
    pub fn all_sections(&self) -> impl Iterator<Item = &SectionInfo> {
        self.sections.iter()
    }

    /// Looks up a keyword in a section. `word` is either the whole keyword
    /// (`timeout client`, `option httplog`) or the first word of a family (`timeout`).
    pub fn keyword(&self, section: SectionKind, word: &str, v: Version) -> KeywordLookup<'_> {
        // A single word stands for itself and for the family it starts, if any.
        let rows: Vec<&KeywordInfo> = if !word.contains(' ') && self.families.contains_key(word) {
            self.by_first_word
                .get(word)
                .map(|idx| idx.iter().filter_map(|&i| self.keywords.get(i)).collect())
                .unwrap_or_default()
        } else {
            match self.by_name.get(word) {
                Some(idx) => idx.iter().filter_map(|&i| self.keywords.get(i)).collect(),
                None => return KeywordLookup::Unknown,
            }
        };
        let family = self.families.get(word).and_then(|&i| self.keywords.get(i));
        let here = |k: &KeywordInfo| k.sections.contains(&section);
        if let Some(k) = rows.iter().filter(|k| here(k)).find(|k| k.exists_in(v)) {
            // A family member found by its first word is reported as the family.
            if k.name != word {
                if let Some(f) = family {
                    return KeywordLookup::Known(f);
                }
            }
            return KeywordLookup::Known(k);
        }
        if let Some(msg) = rows
            .iter()
            .filter(|k| here(k))
            .filter(|k| k.since <= v && k.removed.is_some_and(|r| r <= v))
            .find_map(|k| k.removed_message)
        {
            return KeywordLookup::Removed { message: msg.to_string() };
        }
        let mut legal_in: Vec<SectionKind> = Vec::new();
        for k in rows.iter().filter(|k| k.exists_in(v)) {
            for s in &k.sections {
                if !legal_in.contains(s) {
                    legal_in.push(*s);
                }
            }
        }
        if !legal_in.is_empty() {
            return KeywordLookup::WrongSection { legal_in };
        }
        let since = rows
            .iter()
            .filter(|k| here(k))
            .filter(|k| k.since > v)
            .map(|k| k.since)
            .min()
            .or_else(|| rows.iter().filter(|k| k.since > v).map(|k| k.since).min());
        match since {
            Some(since) => KeywordLookup::NotInVersion { since },
            None => KeywordLookup::Unknown,
        }
    }

    /// Looks up `option <name>` in a section.
    pub fn option(&self, section: SectionKind, name: &str, v: Version) -> KeywordLookup<'_> {
        self.keyword(section, &format!("option {name}"), v)
    }

    /// The sub-words of a family that exist in `section` in `v` (`client`, `connect`, ...
    /// for `timeout`), in data order, for messages listing what is accepted.
    pub fn family_members(&self, section: SectionKind, first: &str, v: Version) -> Vec<&'static str> {
        self.keywords
            .iter()
            .filter(|k| {
                !k.family && k.name.split(' ').next() == Some(first) && k.sections.contains(&section) && k.exists_in(v)
            })
            .map(|k| k.sub_words())
            .collect()
    }

    pub fn bind_option(&self, name: &str, v: Version) -> Lookup<'_, LineOption> {
        lookup_in(&self.bind, self.bind_idx.get(name), v)
    }

    pub fn server_option(&self, name: &str, v: Version) -> Lookup<'_, LineOption> {
        lookup_in(&self.server, self.server_idx.get(name), v)
    }

    pub fn balance(&self, name: &str, v: Version) -> Lookup<'_, BalanceInfo> {
        lookup_in(&self.balance, self.balance_idx.get(name), v)
    }

    pub fn fetch(&self, name: &str, v: Version) -> Lookup<'_, SampleInfo> {
        lookup_in(&self.samples, self.fetch_idx.get(name), v)
    }

    pub fn converter(&self, name: &str, v: Version) -> Lookup<'_, SampleInfo> {
        lookup_in(&self.samples, self.conv_idx.get(name), v)
    }

    /// Every keyword row (families included), for completeness tests.
    pub fn all_keywords(&self) -> impl Iterator<Item = &KeywordInfo> {
        self.keywords.iter()
    }

    pub fn all_bind_options(&self) -> impl Iterator<Item = &LineOption> {
        self.bind.iter()
    }

    pub fn all_server_options(&self) -> impl Iterator<Item = &LineOption> {
        self.server.iter()
    }

    pub fn all_balances(&self) -> impl Iterator<Item = &BalanceInfo> {
        self.balance.iter()
    }

    pub fn all_samples(&self) -> impl Iterator<Item = &SampleInfo> {
        self.samples.iter()
    }

    fn extras<'a>(&'a self, family: &'a str, v: Version) -> impl Iterator<Item = &'static str> + 'a {
        self.extras
            .iter()
            .filter(move |e| e.family == family && e.since <= v && e.removed.is_none_or(|r| v < r))
            .map(|e| e.word)
    }

    /// HAProxy's "did you mean" for an unknown keyword. HAProxy offers one in global and
    /// proxy sections only; elsewhere this returns `None`. For proxies, HAProxy draws from
    /// the keywords of all proxy sections, whatever the current one.
    pub fn suggest_keyword(&self, section: SectionKind, word: &str, v: Version) -> Option<&'static str> {
        let (in_family, family): (fn(SectionKind) -> bool, &str) = if section == SectionKind::Global {
            (|s| s == SectionKind::Global, "global")
        } else if section.is_proxy() {
            (SectionKind::is_proxy, "proxy")
        } else {
            return None;
        };
        let words = self
            .keywords
            .iter()
            .filter(|k| {
                !k.family
                    && k.suggest
                    && k.build.is_none()
                    && k.exists_in(v)
                    && k.sections.iter().any(|s| in_family(*s))
            })
            .map(|k| k.name.split(' ').next().unwrap_or(k.name))
            .chain(self.extras(family, v));
        best_match(word, words)
    }

    /// HAProxy's "did you mean" for an unknown `option` name.
    pub fn suggest_option(&self, word: &str, v: Version) -> Option<&'static str> {
        let words = self
            .keywords
            .iter()
            .filter(|k| !k.family && k.suggest && k.exists_in(v) && k.sections.iter().any(|s| s.is_proxy()))
            .filter_map(|k| k.name.strip_prefix("option "))
            .chain(self.extras("option", v));
        best_match(word, words)
    }

    /// HAProxy's "did you mean" for an unknown `bind` option.
    pub fn suggest_bind_option(&self, word: &str, v: Version) -> Option<&'static str> {
        best_match(word, line_option_names(&self.bind, v))
    }

    /// HAProxy's "did you mean" for an unknown `server` option.
    pub fn suggest_server_option(&self, word: &str, v: Version) -> Option<&'static str> {
        best_match(word, line_option_names(&self.server, v))
    }
}

fn line_option_names(rows: &[LineOption], v: Version) -> impl Iterator<Item = &'static str> + '_ {
    rows.iter().filter(move |o| o.build.is_none() && o.since <= v && o.removed.is_none_or(|r| v < r)).map(|o| o.name)
}

/// Fills `{arg1}` in a removal message with the keyword's first argument.
pub fn render_removed_message(message: &str, args: &[&str]) -> String {
    message.replace("{arg1}", args.first().copied().unwrap_or(""))
}

/// A word's fingerprint: for every pair of neighbouring character classes (letters a-z
/// case-folded, digit, other; the word's start and end count as "other"), how often the
/// pair occurs, plus a mark for each class present. Counters are bytes, as in HAProxy.
fn fingerprint(word: &str) -> [u8; 1024] {
    const OTHER: usize = 28;
    let mut fp = [0u8; 1024];
    let mut from = OTHER;
    let bump = |fp: &mut [u8; 1024], i: usize| {
        if let Some(c) = fp.get_mut(i) {
            *c = c.wrapping_add(1);
        }
    };
    for b in word.bytes() {
        let to = match b.to_ascii_lowercase() {
            c @ b'a'..=b'z' => usize::from(c - b'a') + 1,
            b'0'..=b'9' => 27,
            _ => OTHER,
        };
        if let Some(c) = fp.get_mut(to) {
            *c = 1;
        }
        bump(&mut fp, 32 * from + to);
        from = to;
    }
    bump(&mut fp, 32 * from + OTHER);
    fp
}

fn distance(a: &[u8; 1024], b: &[u8; 1024]) -> usize {
    a.iter().zip(b.iter()).map(|(x, y)| usize::from(x.abs_diff(*y))).sum()
}

/// The candidate closest to `word`; the first one wins a tie. Nothing is offered when the
/// distance exceeds twice the length of either word.
fn best_match(word: &str, candidates: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let fp = fingerprint(word);
    let mut best: Option<(usize, &'static str)> = None;
    for c in candidates {
        let d = distance(&fp, &fingerprint(c));
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    (d <= 2 * word.len() && d <= 2 * c.len()).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V26: Version = Version::new(2, 6);
    const V34: Version = Version::new(3, 4);

    #[test]
    fn every_grammar_file_parses() {
        let g = Grammar::load().expect("grammar/ must parse");
        assert!(g.keywords.len() > 600);
        assert!(g.sections.len() > 15);
        assert!(!g.bind.is_empty() && !g.server.is_empty() && !g.balance.is_empty());
        assert!(g.samples.iter().any(|s| s.kind == SampleKind::Converter));
    }

    #[test]
    fn sections_follow_versions() {
        let g = grammar();
        assert!(g.section("global", V26).is_some());
        assert!(g.section("crt-store", V26).is_none());
        assert!(g.section("crt-store", Version::new(3, 0)).is_some());
        assert!(g.section("traces", Version::new(3, 1)).is_some());
        assert!(g.section("healthcheck", Version::new(3, 3)).is_none());
        assert!(g.section("healthcheck", V34).is_some());
        assert!(g.section("program", V26).is_some());
        assert!(g.section("program", Version::new(3, 3)).is_none());
        assert!(g.section("Global", V26).is_none());
    }

    #[test]
    fn maxconn_is_known_in_global_and_proxies() {
        let g = grammar();
        for s in [SectionKind::Global, SectionKind::Frontend, SectionKind::Defaults] {
            match g.keyword(s, "maxconn", V26) {
                KeywordLookup::Known(k) => assert_eq!(k.args.min_args(), 1),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn removed_proxy_keywords_give_haproxy_messages() {
        let g = grammar();
        let msg = |s, w| match g.keyword(s, w, V26) {
            KeywordLookup::Removed { message } => message,
            other => panic!("{w}: {other:?}"),
        };
        assert_eq!(
            msg(SectionKind::Frontend, "reqadd"),
            " : The 'reqadd' directive is not supported anymore since HAProxy 2.1. Use 'http-request add-header' instead."
        );
        assert_eq!(
            msg(SectionKind::Defaults, "contimeout"),
            " : the 'contimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout connect'."
        );
        assert_eq!(
            msg(SectionKind::Backend, "redispatch"),
            " : keyword 'redispatch' directive is not supported anymore since HAProxy 2.1. Use 'option redispatch'."
        );
        assert_eq!(
            msg(SectionKind::Listen, "block"),
            " : The 'block' directive is not supported anymore since HAProxy 2.1. Use 'http-request deny' which uses the exact same syntax."
        );
        assert_eq!(
            msg(SectionKind::Listen, "grace"),
            ": the 'grace' keyword is not supported any more since HAProxy version 2.5."
        );
        assert_eq!(
            msg(SectionKind::Global, "nbproc"),
            " : nbproc is not supported any more since HAProxy 2.5. Threads will automatically be used on multi-processor machines if available."
        );
        assert_eq!(
            msg(SectionKind::Listen, "option http_proxy"),
            ": option 'http_proxy' is not supported any more since HAProxy 2.5. This option stopped working in HAProxy 1.9 and usually had nasty side effects. It can be more reliably implemented with combinations of 'http-request set-dst' and 'http-request set-uri', and even 'http-request do-resolve' if DNS resolution is desired."
        );
        let monitor = msg(SectionKind::Frontend, "monitor-net");
        assert_eq!(
            render_removed_message(&monitor, &["10.0.0.0/8"]),
            " : 'monitor-net' doesn't exist anymore. Please use 'http-request return status 200 if { src 10.0.0.0/8 }' instead."
        );
    }

    #[test]
    fn global_grace_lives_on_while_proxy_grace_is_removed() {
        let g = grammar();
        assert!(matches!(g.keyword(SectionKind::Global, "grace", V26), KeywordLookup::Known(_)));
        assert!(matches!(g.keyword(SectionKind::Frontend, "grace", V26), KeywordLookup::Removed { .. }));
    }

    #[test]
    fn bind_process_is_deprecated_in_26_and_removed_in_27() {
        let g = grammar();
        match g.keyword(SectionKind::Frontend, "bind-process", V26) {
            KeywordLookup::Known(k) => assert_eq!(k.deprecated, Some(V26)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            g.keyword(SectionKind::Frontend, "bind-process", Version::new(2, 7)),
            KeywordLookup::Removed { .. }
        ));
    }

    #[test]
    fn keywords_added_in_3x_are_unknown_to_26() {
        let g = grammar();
        match g.keyword(SectionKind::Frontend, "guid", V26) {
            KeywordLookup::NotInVersion { since } => assert_eq!(since, Version::new(3, 0)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(g.keyword(SectionKind::Frontend, "guid", V34), KeywordLookup::Known(_)));
        assert!(matches!(
            g.keyword(SectionKind::Defaults, "timeout client-hs", V26),
            KeywordLookup::NotInVersion { .. }
        ));
        assert!(matches!(
            g.keyword(SectionKind::Defaults, "timeout client-hs", Version::new(2, 9)),
            KeywordLookup::Known(_)
        ));
        assert!(matches!(g.balance("log-hash", V26), Lookup::NotInVersion { .. }));
        assert!(matches!(g.balance("leastconn", V26), Lookup::Known(_)));
    }

    #[test]
    fn measured_26_behaviour_beats_the_doc() {
        // Documented since 2.7/2.8, yet 2.6.12 accepts them.
        let g = grammar();
        assert!(matches!(
            g.keyword(SectionKind::Global, "tune.peers.max-updates-at-once", V26),
            KeywordLookup::Known(_)
        ));
        assert!(matches!(g.option(SectionKind::Defaults, "spop-check", V26), KeywordLookup::Known(_)));
        // A frontend ignores force-persist in 2.6 (wrong section), whatever old docs said.
        assert!(matches!(g.keyword(SectionKind::Frontend, "force-persist", V26), KeywordLookup::WrongSection { .. }));
    }

    #[test]
    fn sections_where_keywords_are_legal() {
        let g = grammar();
        match g.keyword(SectionKind::Frontend, "balance", V26) {
            KeywordLookup::WrongSection { legal_in } => {
                assert!(legal_in.contains(&SectionKind::Backend));
                assert!(!legal_in.contains(&SectionKind::Frontend));
            }
            other => panic!("{other:?}"),
        }
        match g.keyword(SectionKind::Frontend, "nbthread", V26) {
            KeywordLookup::WrongSection { legal_in } => {
                assert_eq!(legal_in, vec![SectionKind::Global])
            }
            other => panic!("{other:?}"),
        }
        // abortonclose became legal in frontends with 3.3.
        assert!(matches!(g.option(SectionKind::Frontend, "abortonclose", V26), KeywordLookup::WrongSection { .. }));
        assert!(matches!(g.option(SectionKind::Frontend, "abortonclose", Version::new(3, 3)), KeywordLookup::Known(_)));
        assert!(matches!(g.keyword(SectionKind::Global, "maxconns", V26), KeywordLookup::Unknown));
    }

    #[test]
    fn families_know_their_members() {
        let g = grammar();
        match g.keyword(SectionKind::Frontend, "timeout", V26) {
            KeywordLookup::Known(k) => assert!(k.family),
            other => panic!("{other:?}"),
        }
        let members = g.family_members(SectionKind::Frontend, "tcp-request", V26);
        for m in ["connection", "content", "inspect-delay", "session"] {
            assert!(members.contains(&m), "{m} in {members:?}");
        }
        match g.keyword(SectionKind::Backend, "timeout connect", V26) {
            KeywordLookup::Known(k) => {
                assert_eq!(k.args.items, vec![ShapeItem::Typed(ArgType::Time)]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_know_negation() {
        let g = grammar();
        match g.option(SectionKind::Backend, "redispatch", V26) {
            KeywordLookup::Known(k) => assert!(k.negatable),
            other => panic!("{other:?}"),
        }
        match g.option(SectionKind::Backend, "httpchk", V26) {
            KeywordLookup::Known(k) => assert!(!k.negatable),
            other => panic!("{other:?}"),
        }
        assert!(matches!(g.option(SectionKind::Backend, "forwarded", V26), KeywordLookup::NotInVersion { .. }));
    }

    #[test]
    fn bind_and_server_options() {
        let g = grammar();
        assert!(matches!(g.bind_option("accept-proxy", V26), Lookup::Known(_)));
        match g.server_option("id", V26) {
            Lookup::Known(o) => assert!(!o.default_server),
            other => panic!("{other:?}"),
        }
        match g.server_option("check", V26) {
            Lookup::Known(o) => assert!(o.default_server),
            other => panic!("{other:?}"),
        }
        assert!(matches!(g.server_option("guid", V26), Lookup::NotInVersion { .. }));
        assert!(matches!(g.bind_option("nope", V34), Lookup::Unknown));
        assert!(matches!(g.fetch("src", V26), Lookup::Known(_)));
        assert!(matches!(g.converter("mqtt_is_valid", V26), Lookup::Known(_)));
        assert!(matches!(g.fetch("mqtt_is_valid", V26), Lookup::Unknown));
    }

    #[test]
    fn shapes_count_arguments() {
        let shape = |t| ArgShape::parse(t).unwrap();
        assert_eq!((shape("-").min_args(), shape("-").max_args()), (0, Some(0)));
        let s = shape("<name> [ <int> ]");
        assert_eq!((s.min_args(), s.max_args()), (1, Some(2)));
        let s = shape("{ on | off }");
        assert_eq!((s.min_args(), s.max_args()), (1, Some(1)));
        let s = shape("{ - | <time> }");
        assert_eq!((s.min_args(), s.max_args()), (0, Some(1)));
        let s = shape("<str> [ <cond> ]");
        assert_eq!((s.min_args(), s.max_args()), (1, None));
        assert!(ArgShape::parse("[ <int>").is_err());
        assert!(ArgShape::parse("<bogus>").is_err());
        assert!(ArgType::Time.accepts("10s") && !ArgType::Time.accepts("10S"));
        assert!(ArgType::Size.accepts("16K") && !ArgType::Size.accepts("1.5k"));
    }

    #[test]
    fn did_you_mean_matches_haproxy_26() {
        // Cases taken from HAProxy 2.6.12 output on the corpus and on probes.
        let g = grammar();
        let kw = |s, w| g.suggest_keyword(s, w, V26);
        assert_eq!(kw(SectionKind::Backend, "tcp-repsonse"), Some("tcp-response"));
        assert_eq!(kw(SectionKind::Global, "tune.stick-counters"), Some("tune.idletimer"));
        assert_eq!(kw(SectionKind::Global, "maxconns"), Some("maxconn"));
        assert_eq!(g.suggest_option("forwarded", V26), Some("forwardfor"));
        assert_eq!(g.suggest_option("http-use-htx", V26), Some("httpclose"));
        assert_eq!(kw(SectionKind::Peers, "maxconns"), None);
        // Probes run on haproxy 2.6.12 (word, its suggestion or none).
        for (w, want) in [
            ("maxconn2", Some("maxconn")),
            ("nbthreads", Some("nbthread")),
            ("daemonize", Some("daemon")),
            ("tune.bufsiz", Some("tune.bufsize")),
            ("ssl-default-bind-cipher", Some("ssl-default-bind-ciphers")),
            ("stats-socket", None),
            ("logs", Some("log")),
        ] {
            assert_eq!(kw(SectionKind::Global, w), want, "{w}");
        }
        for (w, want) in [
            ("timeouts", "timeout"),
            ("balanc", "balance"),
            ("server-templat", "server-template"),
            ("use-backend", "use_backend"),
            ("default-backend", "default_backend"),
            ("http-requests", "http-request"),
            ("errorfile2", "errorfile"),
            ("stick-tables", "stick-table"),
            ("acls", "acl"),
            ("cookies", "cookie"),
        ] {
            assert_eq!(kw(SectionKind::Backend, w), Some(want), "{w}");
        }
        for (w, want) in [
            ("tcplogs", "tcplog"),
            ("redispach", "redispatch"),
            ("dontlognul", "dontlognull"),
            ("http-keepalive", "http-keep-alive"),
            ("tcp-chek", "tcp-check"),
        ] {
            assert_eq!(g.suggest_option(w, V26), Some(want), "{w}");
        }
        assert_eq!(g.suggest_bind_option("accept-proxi", V26), Some("accept-proxy"));
        assert_eq!(g.suggest_bind_option("transparant", V26), Some("transparent"));
        assert_eq!(g.suggest_bind_option("ssl-crt", V26), None);
        for (w, want) in [("chek", "check"), ("inter2", "inter"), ("maxcon", "maxconn"), ("weigth", "weight")] {
            assert_eq!(g.suggest_server_option(w, V26), Some(want), "{w}");
        }
    }
}
