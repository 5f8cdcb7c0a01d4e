//! HAProxy's command line, parsed into a value.
//!
//! HAProxy's flags are single-dash words (`-sf`, `-db`, `-vv`, `-cc`), so every token is
//! matched whole against one table, [`FLAGS`]; the usage text is printed from the same table.
//! Parsing never exits: it returns [`Options`] (whose [`Mode`] says run, check, version or help)
//! or a [`CliError`] that says whether HAProxy would print its usage text after it.
//!
//! Behaviour taken from HAProxy 2.6 (verified against the installed binary):
//! - `-v`/`-vv` win at once: the words after them are not looked at (`-v -z` exits 0).
//! - Options that take a value take the next word even when it starts with `-` (`-p -c`).
//! - `-sf`/`-st` take every following word that does not start with `-`; a word that is not a
//!   number is an error without usage text, a number <= 0 gives the usage text.
//! - `-n`, `-m`, `-N` read their number like C's `atol`: `-n abc` is accepted and means unset.
//! - `-dK<class>` and `-dM<opts>` carry their value inside the word.
//! - `-cc EXPR` needs no configuration file; run and check modes need one (`-f` or `--`).
//! - Everything after `--` is a configuration file, even words starting with `-`.
//!
//! Differences on purpose: a word that only starts like a flag (`-qq`, `-vvv`, `-cf`) is
//! refused with a suggestion, where HAProxy looks at its first letters only; a missing value
//! is reported as such (HAProxy 2.6 prints "failed to copy argv."), followed by the usage text.
use crate::version::Version;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

/// How diagnostics are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// HAProxy's own `[ALERT]`/`[WARNING]` lines, byte for byte.
    #[default]
    Haproxy,
    /// File, line and a caret under the word.
    Human,
    Json,
    /// GitHub Actions workflow annotations.
    Github,
}

impl OutputFormat {
    const NAMES: [(&'static str, OutputFormat); 4] = [
        ("haproxy", OutputFormat::Haproxy),
        ("human", OutputFormat::Human),
        ("json", OutputFormat::Json),
        ("github", OutputFormat::Github),
    ];

    fn parse(text: &str) -> Option<OutputFormat> {
        Self::NAMES.iter().find(|(name, _)| *name == text).map(|(_, format)| *format)
    }
}

/// What the process is asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Load the configuration and run the proxy.
    #[default]
    Run,
    /// `-c`: check the configuration and exit.
    Check,
    /// `-cc EXPR`: evaluate one `.if` condition and exit (0 true, 1 false).
    CheckCond(String),
    /// `-v`: print [`version_text`]`(false)` on stdout, exit 0.
    Version,
    /// `-vv`: print [`version_text`]`(true)` on stdout, exit 0.
    VersionVerbose,
    /// `-h`: as HAProxy does, print the usage text on stderr and exit 1.
    Help,
}

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `-f` words and the words after `--`, in order; directories are expanded by the loader.
    pub files: Vec<PathBuf>,
    pub mode: Mode,
    /// `-q`
    pub quiet: bool,
    /// `-V`
    pub verbose: bool,
    /// `-d`
    pub debug: bool,
    /// `-db` (and `-Ws`): stay in the foreground.
    pub foreground: bool,
    /// `-D`
    pub daemon: bool,
    /// `-p FILE`
    pub pidfile: Option<PathBuf>,
    /// `-W` (and `-Ws`)
    pub master_worker: bool,
    /// `-Ws`: master-worker with systemd notify.
    pub systemd: bool,
    /// `-sf PID...`: old processes to finish.
    pub soft_stop_pids: Vec<i32>,
    /// `-st PID...`: old processes to terminate.
    pub hard_stop_pids: Vec<i32>,
    /// `-dD`: diagnostic mode.
    pub diag: bool,
    /// `-dW`: any warning is an error.
    pub zero_warning: bool,
    /// `-dr`: server address resolution failures are not fatal.
    pub dr: bool,
    /// `-dK<class[,...]>`: dump registered keywords.
    pub dump_keywords: Option<String>,
    /// `-L NAME`: local peer name.
    pub localpeer: Option<String>,
    /// `-C DIR`: change directory before loading files.
    pub chdir: Option<PathBuf>,
    /// `-m MB`: memory limit; `None` when absent or not positive.
    pub mem_mb: Option<u64>,
    /// `-n N`: global maxconn; `None` when absent or not positive.
    pub maxconn: Option<u64>,
    /// `-N N`: default per-proxy maxconn; `None` when absent or not positive.
    pub maxsock_per_proxy: Option<u64>,
    /// `-x SOCKET`: fetch listening sockets from the old process.
    pub old_unix_socket: Option<PathBuf>,
    /// `-S BIND[,OPTS]`: master CLI listeners, in command-line order.
    pub master_cli: Vec<String>,
    /// HAProxy tuning flags accepted and not acted upon yet (`-de`, `-dS`, `-dM...`).
    pub ignored_flags: Vec<String>,
    /// HAProxy's command-line warnings (text without the `[WARNING]` prefix).
    pub warnings: Vec<String>,
    /// `--target-version X.Y`: the HAProxy dialect to check against.
    pub target: Version,
    /// `--format NAME`
    pub format: OutputFormat,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            files: Vec::new(),
            mode: Mode::Run,
            quiet: false,
            verbose: false,
            debug: false,
            foreground: false,
            daemon: false,
            pidfile: None,
            master_worker: false,
            systemd: false,
            soft_stop_pids: Vec::new(),
            hard_stop_pids: Vec::new(),
            diag: false,
            zero_warning: false,
            dr: false,
            dump_keywords: None,
            localpeer: None,
            chdir: None,
            mem_mb: None,
            maxconn: None,
            maxsock_per_proxy: None,
            old_unix_socket: None,
            master_cli: Vec::new(),
            ignored_flags: Vec::new(),
            warnings: Vec::new(),
            target: Version::NEWEST,
            format: OutputFormat::Haproxy,
        }
    }
}

/// Why the command line was refused. The caller prints the message (as an alert), then
/// [`usage`] when [`CliError::shows_usage`] says so, and exits with [`CliError::EXIT_CODE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliError {
    /// A word that is no flag of ours; `suggestion` is the nearest flag, if one is close.
    UnknownFlag { word: String, suggestion: Option<&'static str> },
    /// A word outside any option, before `--`.
    UnexpectedWord(String),
    /// A flag that takes a value came last.
    MissingValue { flag: &'static str },
    /// A value that must be text is not valid UTF-8.
    NotUnicode { flag: &'static str },
    /// Neither `-f` nor `--` gave a configuration file.
    NoConfigFile,
    /// `-sf`/`-st` word with bytes after the number (HAProxy's text).
    PidTrailing { flag: &'static str, rest: String },
    /// `-sf`/`-st` word out of range (HAProxy's text).
    PidRange { flag: &'static str, word: String },
    /// `-sf`/`-st` PID that is zero or negative.
    PidNotPositive { flag: &'static str, word: String },
    /// `--target-version` not of the form X.Y.
    BadTargetVersion(String),
    /// `--target-version` outside the dialects hapx speaks.
    UnsupportedTargetVersion(Version),
    /// `--format` with an unknown name.
    BadFormat { word: String, suggestion: Option<&'static str> },
}

impl CliError {
    /// Every command-line error exits with 1, as HAProxy's do.
    pub const EXIT_CODE: i32 = 1;

    /// Whether HAProxy follows this error with its usage text.
    pub fn shows_usage(&self) -> bool {
        matches!(
            self,
            CliError::UnknownFlag { .. }
                | CliError::UnexpectedWord(_)
                | CliError::MissingValue { .. }
                | CliError::NoConfigFile
                | CliError::PidNotPositive { .. }
        )
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownFlag { word, suggestion } => {
                write!(f, "unknown option '{word}'")?;
                if let Some(near) = suggestion {
                    write!(f, "; did you mean '{near}'?")?;
                }
                Ok(())
            }
            CliError::UnexpectedWord(word) => {
                write!(f, "unexpected argument '{word}' (configuration files go after -f or --)")
            }
            // HAProxy's own texts for these two.
            CliError::MissingValue { flag: "-x" } => {
                write!(f, "Unix socket path expected with the -x flag")
            }
            CliError::MissingValue { flag: "-S" } => {
                write!(f, "Socket and optional bind parameters expected with the -S flag")
            }
            CliError::MissingValue { flag } => write!(f, "option {flag} expects an argument"),
            CliError::NotUnicode { flag } => {
                write!(f, "the argument of option {flag} is not valid UTF-8")
            }
            CliError::NoConfigFile => write!(f, "no configuration file given (use -f <file|dir> or -- <file>...)"),
            CliError::PidTrailing { flag, rest } => {
                write!(f, "{flag} option: some bytes unconsumed in PID list {{{rest}}}")
            }
            CliError::PidRange { flag, word } => {
                write!(f, "{flag} option: failed to parse {{{word}}}: Numerical result out of range")
            }
            CliError::PidNotPositive { flag, word } => {
                write!(f, "{flag} option: PID must be positive, got '{word}'")
            }
            CliError::BadTargetVersion(word) => write!(
                f,
                "invalid --target-version '{word}': expected X.Y, from {} to {}",
                Version::OLDEST,
                Version::NEWEST
            ),
            CliError::UnsupportedTargetVersion(version) => write!(
                f,
                "unsupported --target-version {version}: hapx speaks HAProxy {} to {}",
                Version::OLDEST,
                Version::NEWEST
            ),
            CliError::BadFormat { word, suggestion } => {
                write!(f, "unknown --format '{word}': expected haproxy, human, json or github")?;
                if let Some(near) = suggestion {
                    write!(f, "; did you mean '{near}'?")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CliError {}

/// What a flag does with the words after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Takes {
    Nothing,
    /// The next word, whatever it looks like; the text is its placeholder in the usage.
    Value(&'static str),
    /// The following words that do not start with `-`.
    Pids,
    /// The rest of the same word (`-dKcfg`).
    Attached(&'static str),
    /// Every remaining word.
    Rest(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    File,
    Check,
    CheckCond,
    Verbose,
    Quiet,
    Version,
    VersionVerbose,
    Debug,
    Foreground,
    Daemon,
    Pidfile,
    MasterWorker,
    Systemd,
    SoftStop,
    HardStop,
    Dr,
    LocalPeer,
    Chdir,
    Mem,
    Maxconn,
    MaxPerProxy,
    OldSocket,
    MasterCli,
    Diag,
    ZeroWarning,
    DumpKeywords,
    Ignored,
    Help,
    EndOfOptions,
    Target,
    Format,
}

struct Flag {
    /// Whole words that select this flag; the first is the one shown in the usage.
    names: &'static [&'static str],
    takes: Takes,
    action: Action,
    help: &'static str,
}

/// Every flag hapx accepts. The parser and the usage text both read this table.
const FLAGS: &[Flag] = &[
    Flag {
        names: &["-f"],
        takes: Takes::Value("<file|dir>"),
        action: Action::File,
        help: "load a configuration file, or a directory's *.cfg files (repeatable)",
    },
    Flag {
        names: &["-c", "--check"],
        takes: Takes::Nothing,
        action: Action::Check,
        help: "check the configuration and exit",
    },
    Flag {
        names: &["-cc"],
        takes: Takes::Value("<expr>"),
        action: Action::CheckCond,
        help: "evaluate a .if condition and exit (0 true, 1 false)",
    },
    Flag { names: &["-v"], takes: Takes::Nothing, action: Action::Version, help: "print the version and exit" },
    Flag {
        names: &["-vv"],
        takes: Takes::Nothing,
        action: Action::VersionVerbose,
        help: "print the version and what is supported, and exit",
    },
    Flag { names: &["-V"], takes: Takes::Nothing, action: Action::Verbose, help: "verbose mode (overrides -q)" },
    Flag { names: &["-q"], takes: Takes::Nothing, action: Action::Quiet, help: "quiet mode: print no messages" },
    Flag { names: &["-d"], takes: Takes::Nothing, action: Action::Debug, help: "debug mode" },
    Flag { names: &["-db"], takes: Takes::Nothing, action: Action::Foreground, help: "stay in the foreground" },
    Flag { names: &["-D"], takes: Takes::Nothing, action: Action::Daemon, help: "run as a daemon" },
    Flag {
        names: &["-p"],
        takes: Takes::Value("<pidfile>"),
        action: Action::Pidfile,
        help: "write the process ids to this file",
    },
    Flag { names: &["-W"], takes: Takes::Nothing, action: Action::MasterWorker, help: "master-worker mode" },
    Flag {
        names: &["-Ws"],
        takes: Takes::Nothing,
        action: Action::Systemd,
        help: "master-worker mode with systemd notification",
    },
    Flag {
        names: &["-sf"],
        takes: Takes::Pids,
        action: Action::SoftStop,
        help: "ask these old processes to finish their work and exit",
    },
    Flag { names: &["-st"], takes: Takes::Pids, action: Action::HardStop, help: "terminate these old processes" },
    Flag {
        names: &["-x"],
        takes: Takes::Value("<socket>"),
        action: Action::OldSocket,
        help: "take the listening sockets over from this unix socket",
    },
    Flag {
        names: &["-S"],
        takes: Takes::Value("<bind>[,<opts>]"),
        action: Action::MasterCli,
        help: "add a master CLI listener",
    },
    Flag {
        names: &["-L"],
        takes: Takes::Value("<name>"),
        action: Action::LocalPeer,
        help: "local peer name (default: host name)",
    },
    Flag {
        names: &["-C"],
        takes: Takes::Value("<dir>"),
        action: Action::Chdir,
        help: "change to this directory before loading files",
    },
    Flag { names: &["-m"], takes: Takes::Value("<megs>"), action: Action::Mem, help: "memory limit in megabytes" },
    Flag {
        names: &["-n"],
        takes: Takes::Value("<maxconn>"),
        action: Action::Maxconn,
        help: "global maximum number of connections",
    },
    Flag {
        names: &["-N"],
        takes: Takes::Value("<maxpconn>"),
        action: Action::MaxPerProxy,
        help: "default maximum number of connections per proxy",
    },
    Flag {
        names: &["-dr"],
        takes: Takes::Nothing,
        action: Action::Dr,
        help: "do not fail on server address resolution errors",
    },
    Flag {
        names: &["-dD"],
        takes: Takes::Nothing,
        action: Action::Diag,
        help: "diagnostic mode: also report dubious statements",
    },
    Flag {
        names: &["-dW"],
        takes: Takes::Nothing,
        action: Action::ZeroWarning,
        help: "fail when any warning is reported",
    },
    Flag {
        names: &["-dK"],
        takes: Takes::Attached("<class>[,...]"),
        action: Action::DumpKeywords,
        help: "dump the known keywords of these classes ('help' lists them)",
    },
    Flag {
        names: &["-de", "-dp", "-dS", "-dG", "-dR", "-dV", "-dL"],
        takes: Takes::Nothing,
        action: Action::Ignored,
        help: "HAProxy tuning flags: accepted, no effect yet",
    },
    Flag {
        names: &["-dM"],
        takes: Takes::Attached("<opts>"),
        action: Action::Ignored,
        help: "HAProxy memory debugging: accepted, no effect yet",
    },
    Flag {
        names: &["--target-version"],
        takes: Takes::Value("<X.Y>"),
        action: Action::Target,
        help: "HAProxy version to check against ({oldest} to {newest}, default {newest})",
    },
    Flag {
        names: &["--format"],
        takes: Takes::Value("<name>"),
        action: Action::Format,
        help: "message format: haproxy (default), human, json, github",
    },
    Flag { names: &["-h", "--help"], takes: Takes::Nothing, action: Action::Help, help: "print this help" },
    Flag {
        names: &["--"],
        takes: Takes::Rest("<file>..."),
        action: Action::EndOfOptions,
        help: "every word after this is a configuration file",
    },
];

/// Finds the table row for one whole word, and the value carried inside it (`-dKcfg`,
/// `--format=json`).
fn lookup(word: &str) -> Option<(&'static Flag, Option<&str>)> {
    for flag in FLAGS {
        for name in flag.names {
            if word == *name {
                return Some((flag, None));
            }
            let rest = match flag.takes {
                Takes::Attached(_) => word.strip_prefix(name),
                Takes::Value(_) if name.starts_with("--") => {
                    word.strip_prefix(name).and_then(|rest| rest.strip_prefix('='))
                }
                _ => None,
            };
            if let Some(rest) = rest {
                return Some((flag, Some(rest)));
            }
        }
    }
    None
}

/// Parses the command line, without the program name (`std::env::args_os().skip(1)`).
pub fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Options, CliError> {
    let mut opts = Options::default();
    let mut parser = lexopt::Parser::from_args(args);
    // A fresh parser always yields its raw arguments; with none, there is nothing to read.
    let Some(mut raw) = parser.try_raw_args() else {
        return finish(opts);
    };
    while let Some(word) = raw.next() {
        let Some(text) = word.to_str() else {
            return Err(stray(&word));
        };
        let Some((flag, inline)) = lookup(text) else {
            return Err(stray(&word));
        };
        let name = flag.names.first().copied().unwrap_or("");
        let value = match flag.takes {
            Takes::Value(_) => match inline {
                Some(v) => Some(OsString::from(v)),
                None => Some(raw.next().ok_or(CliError::MissingValue { flag: name })?),
            },
            Takes::Attached(_) => inline.map(OsString::from),
            Takes::Nothing | Takes::Pids | Takes::Rest(_) => None,
        };
        match flag.action {
            Action::File => opts.files.extend(value.map(PathBuf::from)),
            // HAProxy evaluates -cc before anything else, whatever the order of -c and -cc.
            Action::Check if !matches!(opts.mode, Mode::CheckCond(_)) => opts.mode = Mode::Check,
            Action::Check => {}
            Action::CheckCond => opts.mode = Mode::CheckCond(text_of(value, name)?),
            Action::Version => {
                opts.mode = Mode::Version;
                return Ok(opts);
            }
            Action::VersionVerbose => {
                opts.mode = Mode::VersionVerbose;
                return Ok(opts);
            }
            Action::Help => {
                opts.mode = Mode::Help;
                return Ok(opts);
            }
            Action::Verbose => opts.verbose = true,
            Action::Quiet => opts.quiet = true,
            Action::Debug => opts.debug = true,
            Action::Foreground => opts.foreground = true,
            Action::Daemon => opts.daemon = true,
            Action::Pidfile => opts.pidfile = value.map(PathBuf::from),
            Action::MasterWorker => opts.master_worker = true,
            Action::Systemd => {
                opts.master_worker = true;
                opts.foreground = true;
                opts.systemd = true;
            }
            Action::SoftStop | Action::HardStop => {
                while let Some(pid_word) = raw.next_if(|w| !starts_with_dash(w)) {
                    let pid = parse_pid(name, &pid_word)?;
                    if flag.action == Action::SoftStop {
                        opts.soft_stop_pids.push(pid);
                    } else {
                        opts.hard_stop_pids.push(pid);
                    }
                }
            }
            Action::OldSocket => {
                if opts.old_unix_socket.is_some() {
                    opts.warnings.push("-x option already set, overwriting the value".to_string());
                }
                opts.old_unix_socket = value.map(PathBuf::from);
            }
            Action::MasterCli => opts.master_cli.push(text_of(value, name)?),
            Action::LocalPeer => opts.localpeer = Some(text_of(value, name)?),
            Action::Chdir => opts.chdir = value.map(PathBuf::from),
            Action::Mem => opts.mem_mb = positive(atol(&value)),
            Action::Maxconn => opts.maxconn = positive(atol(&value)),
            Action::MaxPerProxy => opts.maxsock_per_proxy = positive(atol(&value)),
            Action::Dr => opts.dr = true,
            Action::Diag => opts.diag = true,
            Action::ZeroWarning => opts.zero_warning = true,
            Action::DumpKeywords => opts.dump_keywords = Some(inline.unwrap_or_default().to_string()),
            Action::Ignored => opts.ignored_flags.push(text.to_string()),
            Action::EndOfOptions => {
                opts.files.extend(raw.by_ref().map(PathBuf::from));
            }
            Action::Target => opts.target = parse_target(&text_of(value, name)?)?,
            Action::Format => {
                let word = text_of(value, name)?;
                opts.format = OutputFormat::parse(&word).ok_or_else(|| CliError::BadFormat {
                    suggestion: nearest(&word, OutputFormat::NAMES.iter().map(|(n, _)| *n)),
                    word,
                })?;
            }
        }
    }
    finish(opts)
}

/// Checks made once every word is read.
fn finish(opts: Options) -> Result<Options, CliError> {
    let needs_files = matches!(opts.mode, Mode::Run | Mode::Check);
    if needs_files && opts.files.is_empty() {
        return Err(CliError::NoConfigFile);
    }
    Ok(opts)
}

/// The error for a word that matched no flag.
fn stray(word: &OsStr) -> CliError {
    let text = word.to_string_lossy().into_owned();
    if starts_with_dash(word) {
        let suggestion = nearest(&text, FLAGS.iter().flat_map(|f| f.names.iter().copied()));
        CliError::UnknownFlag { word: text, suggestion }
    } else {
        CliError::UnexpectedWord(text)
    }
}

fn starts_with_dash(word: &OsStr) -> bool {
    word.as_encoded_bytes().first() == Some(&b'-')
}

fn text_of(value: Option<OsString>, flag: &'static str) -> Result<String, CliError> {
    value.ok_or(CliError::MissingValue { flag })?.into_string().map_err(|_| CliError::NotUnicode { flag })
}

fn parse_target(word: &str) -> Result<Version, CliError> {
    let version = Version::parse(word).ok_or_else(|| CliError::BadTargetVersion(word.into()))?;
    if version.is_supported() {
        Ok(version)
    } else {
        Err(CliError::UnsupportedTargetVersion(version))
    }
}

/// C's `isspace` in the "C" locale, as `strtol` and `atol` skip it.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtol(text, &end, 10)`: the value (`None` on overflow) and the unread rest. With no digit
/// the rest is the whole text, as in C.
fn strtol(text: &[u8]) -> (Option<i64>, &[u8]) {
    let start = text.iter().position(|b| !is_c_space(*b)).unwrap_or(text.len());
    let body = text.get(start..).unwrap_or_default();
    let (negative, digits_at) = match body.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let digits = body.get(digits_at..).unwrap_or_default();
    let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 {
        return (Some(0), text);
    }
    let mut value: Option<i64> = Some(0);
    for d in digits.iter().take(count) {
        let digit = i64::from(d - b'0');
        value = value.and_then(|v| v.checked_mul(10)).and_then(|v| {
            if negative {
                v.checked_sub(digit)
            } else {
                v.checked_add(digit)
            }
        });
    }
    (value, digits.get(count..).unwrap_or_default())
}

/// C's `atol` as HAProxy applies it to `-n`, `-m`, `-N`: garbage reads as 0, overflow saturates.
fn atol(value: &Option<OsString>) -> i64 {
    let bytes = value.as_ref().map(|v| v.as_encoded_bytes()).unwrap_or_default();
    match strtol(bytes) {
        (Some(v), _) => v,
        (None, _) if bytes.contains(&b'-') => i64::MIN,
        (None, _) => i64::MAX,
    }
}

/// HAProxy treats zero (and below) as "not set" for these limits.
fn positive(value: i64) -> Option<u64> {
    u64::try_from(value).ok().filter(|v| *v > 0)
}

/// One `-sf`/`-st` word, read as HAProxy reads it (`strtol`, trailing spaces allowed).
fn parse_pid(flag: &'static str, word: &OsStr) -> Result<i32, CliError> {
    let bytes = word.as_encoded_bytes();
    let (value, rest) = strtol(bytes);
    let out_of_range = || CliError::PidRange { flag, word: word.to_string_lossy().into_owned() };
    let value = value.ok_or_else(out_of_range)?;
    let rest_start = rest.iter().position(|b| !is_c_space(*b));
    if let Some(rest) = rest_start.and_then(|at| rest.get(at..)) {
        return Err(CliError::PidTrailing { flag, rest: String::from_utf8_lossy(rest).into_owned() });
    }
    // HAProxy would truncate to an int; refusing is safer than signalling another process.
    let pid = i32::try_from(value).map_err(|_| out_of_range())?;
    if pid <= 0 {
        return Err(CliError::PidNotPositive { flag, word: word.to_string_lossy().into_owned() });
    }
    Ok(pid)
}

/// Optimal string alignment distance: edits plus swaps of neighbours (`chek`/`chekc`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        d[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        d[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[at(i - 1, j)] + 1).min(d[at(i, j - 1)] + 1).min(d[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[at(i - 2, j - 2)] + 1);
            }
            d[at(i, j)] = best;
        }
    }
    d[at(a.len(), b.len())]
}

/// The closest candidate, when close enough to be a typo. Two-letter words get no suggestion:
/// every other two-letter flag is one edit away from them.
fn nearest(word: &str, candidates: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let length = word.chars().count();
    if length < 3 {
        return None;
    }
    let allowed = if length >= 6 { 2 } else { 1 };
    let mut best: Option<(usize, &'static str)> = None;
    for candidate in candidates {
        let distance = edit_distance(word, candidate);
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, name)| name)
}

/// The usage text, printed from [`FLAGS`].
pub fn usage() -> String {
    let mut rows = Vec::new();
    for flag in FLAGS {
        let mut names = flag.names.join(", ");
        match flag.takes {
            Takes::Value(what) | Takes::Rest(what) => {
                names.push(' ');
                names.push_str(what);
            }
            Takes::Attached(what) => names.push_str(what),
            Takes::Pids => names.push_str(" <pid>..."),
            Takes::Nothing => {}
        }
        rows.push((names, flag.help));
    }
    // Longer names get their help on the next line, so one wide row does not push all others.
    const MAX_WIDTH: usize = 22;
    let width = rows.iter().map(|(n, _)| n.len()).filter(|len| *len <= MAX_WIDTH).max().unwrap_or(0);
    let mut text = String::from(
        "Usage: hapx [-f <file|dir>]... [options] [-- <file>...]\n\
         A drop-in replacement for HAProxy: same configuration language, same command line.\n\n",
    );
    for (names, help) in rows {
        let help =
            help.replace("{oldest}", &Version::OLDEST.to_string()).replace("{newest}", &Version::NEWEST.to_string());
        if names.len() > width {
            text.push_str(&format!("  {names}\n  {:width$}  {help}\n", ""));
        } else {
            text.push_str(&format!("  {names:<width$}  {help}\n"));
        }
    }
    text
}

/// The `-v` text, and with `verbose` the `-vv` text.
pub fn version_text(verbose: bool) -> String {
    let mut text = format!(
        "hapx version {} - a Rust drop-in replacement for HAProxy\n\
         Speaks the HAProxy configuration language of versions {} to {} (default target: {}).\n",
        env!("CARGO_PKG_VERSION"),
        Version::OLDEST,
        Version::NEWEST,
        Version::NEWEST
    );
    if verbose {
        text.push_str(
            "Supported:\n  \
             front end: configuration check (-c, -cc, -dD, -dW)\n  \
             runtime: mode tcp over TCP and UNIX sockets, health checks, logs (no TLS, \
             no HTTP, no master-worker yet)\n\n\
             Feature list : +CHECK +CHECK_CONDITION +RUNTIME +EPOLL -POLL -LINUX_SPLICE \
             -OPENSSL -LUA -PCRE2 -PROMEX -QUIC -SYSTEMD +THREAD -ZLIB\n",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Options, CliError> {
        parse_args(words.iter().map(OsString::from))
    }

    fn ok(words: &[&str]) -> Options {
        match parse(words) {
            Ok(opts) => opts,
            Err(e) => panic!("{words:?} refused: {e}"),
        }
    }

    fn err(words: &[&str]) -> CliError {
        match parse(words) {
            Ok(opts) => panic!("{words:?} accepted: {opts:?}"),
            Err(e) => e,
        }
    }

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn check_with_files_in_order() {
        let opts = ok(&["-c", "-f", "a.cfg", "-f", "conf.d"]);
        assert_eq!(opts.mode, Mode::Check);
        assert_eq!(opts.files, paths(&["a.cfg", "conf.d"]));
        assert_eq!(opts.target, Version::NEWEST);
        assert_eq!(opts.format, OutputFormat::Haproxy);
    }

    #[test]
    fn long_check_is_check() {
        assert_eq!(ok(&["--check", "-f", "a.cfg"]).mode, Mode::Check);
    }

    #[test]
    fn run_is_the_default_mode() {
        assert_eq!(ok(&["-f", "a.cfg"]).mode, Mode::Run);
    }

    #[test]
    fn check_condition_needs_no_file_and_wins_over_check() {
        let expr = "version_atleast(2.4)";
        assert_eq!(ok(&["-cc", expr]).mode, Mode::CheckCond(expr.into()));
        let opts = ok(&["-cc", expr, "-c", "-f", "a.cfg"]);
        assert_eq!(opts.mode, Mode::CheckCond(expr.into()));
    }

    #[test]
    fn check_condition_without_expression_shows_usage() {
        let e = err(&["-cc"]);
        assert_eq!(e, CliError::MissingValue { flag: "-cc" });
        assert!(e.shows_usage());
    }

    #[test]
    fn version_flags_stop_parsing() {
        assert_eq!(ok(&["-v"]).mode, Mode::Version);
        assert_eq!(ok(&["-vv"]).mode, Mode::VersionVerbose);
        // HAProxy prints its version for `-v -z` and never sees `-z`.
        assert_eq!(ok(&["-v", "-z"]).mode, Mode::Version);
        assert_eq!(ok(&["-c", "-vv", "stray"]).mode, Mode::VersionVerbose);
    }

    #[test]
    fn help_flags() {
        assert_eq!(ok(&["-h"]).mode, Mode::Help);
        assert_eq!(ok(&["--help"]).mode, Mode::Help);
    }

    #[test]
    fn boolean_flags_each_set_their_field() {
        let opts = ok(&["-f", "a", "-V", "-q", "-d", "-db", "-D", "-W", "-dr", "-dD", "-dW"]);
        assert!(opts.verbose && opts.quiet && opts.debug && opts.foreground);
        assert!(opts.daemon && opts.master_worker && opts.dr && opts.diag);
        assert!(opts.zero_warning);
        assert!(!opts.systemd);
    }

    #[test]
    fn systemd_master_worker_implies_foreground() {
        let opts = ok(&["-Ws", "-f", "a"]);
        assert!(opts.master_worker && opts.systemd && opts.foreground);
    }

    #[test]
    fn valued_flags_each_set_their_field() {
        let opts = ok(&[
            "-f",
            "a",
            "-p",
            "/run/h.pid",
            "-L",
            "peer1",
            "-C",
            "/etc/h",
            "-m",
            "512",
            "-n",
            "1000",
            "-N",
            "50",
            "-x",
            "/run/h.sock",
            "-S",
            "/run/m.sock,mode,600",
        ]);
        assert_eq!(opts.pidfile, Some(PathBuf::from("/run/h.pid")));
        assert_eq!(opts.localpeer.as_deref(), Some("peer1"));
        assert_eq!(opts.chdir, Some(PathBuf::from("/etc/h")));
        assert_eq!(opts.mem_mb, Some(512));
        assert_eq!(opts.maxconn, Some(1000));
        assert_eq!(opts.maxsock_per_proxy, Some(50));
        assert_eq!(opts.old_unix_socket, Some(PathBuf::from("/run/h.sock")));
        assert_eq!(opts.master_cli, vec!["/run/m.sock,mode,600".to_string()]);
        assert!(opts.warnings.is_empty());
    }

    #[test]
    fn second_x_warns_as_haproxy_does() {
        let opts = ok(&["-f", "a", "-x", "s1", "-x", "s2"]);
        assert_eq!(opts.old_unix_socket, Some(PathBuf::from("s2")));
        assert_eq!(opts.warnings, vec!["-x option already set, overwriting the value".to_string()]);
    }

    #[test]
    fn value_may_start_with_a_dash() {
        // HAProxy takes `-c` as the pid file name here.
        let opts = ok(&["-f", "a", "-p", "-c"]);
        assert_eq!(opts.pidfile, Some(PathBuf::from("-c")));
        assert_eq!(opts.mode, Mode::Run);
    }

    #[test]
    fn numbers_read_like_atol() {
        // `-n abc` is accepted by HAProxy 2.6 and means "not set".
        assert_eq!(ok(&["-f", "a", "-n", "abc"]).maxconn, None);
        assert_eq!(ok(&["-f", "a", "-n", "12abc"]).maxconn, Some(12));
        assert_eq!(ok(&["-f", "a", "-n", " +7"]).maxconn, Some(7));
        assert_eq!(ok(&["-f", "a", "-N", "-5"]).maxsock_per_proxy, None);
        assert_eq!(ok(&["-f", "a", "-m", "0"]).mem_mb, None);
    }

    #[test]
    fn stop_lists_take_all_following_numbers() {
        let opts = ok(&["-sf", "1", "2", "3", "-f", "x"]);
        assert_eq!(opts.soft_stop_pids, vec![1, 2, 3]);
        assert_eq!(opts.files, paths(&["x"]));
        let opts = ok(&["-f", "x", "-st", "40", " 41 ", "-c"]);
        assert_eq!(opts.hard_stop_pids, vec![40, 41]);
        assert_eq!(opts.mode, Mode::Check);
        assert!(ok(&["-f", "x", "-sf"]).soft_stop_pids.is_empty());
    }

    #[test]
    fn stop_list_word_with_garbage_is_haproxy_error() {
        let e = err(&["-f", "x", "-sf", "1", "2", "abc"]);
        assert_eq!(e.to_string(), "-sf option: some bytes unconsumed in PID list {abc}");
        assert!(!e.shows_usage());
        let e = err(&["-f", "x", "-st", "12x"]);
        assert_eq!(e.to_string(), "-st option: some bytes unconsumed in PID list {x}");
    }

    #[test]
    fn stop_list_zero_pid_shows_usage() {
        let e = err(&["-f", "x", "-sf", "0"]);
        assert!(matches!(e, CliError::PidNotPositive { flag: "-sf", .. }));
        assert!(e.shows_usage());
    }

    #[test]
    fn stop_list_huge_pid_is_out_of_range() {
        let e = err(&["-f", "x", "-sf", "99999999999999999999"]);
        assert_eq!(e.to_string(), "-sf option: failed to parse {99999999999999999999}: Numerical result out of range");
        assert!(matches!(err(&["-f", "x", "-sf", "99999999999"]), CliError::PidRange { .. }));
    }

    #[test]
    fn haproxy_words_are_not_split_into_short_flags() {
        // Clustered reading would give -s -f / -d -b / -c -c; each is one flag.
        let opts = ok(&["-db", "-cc", "1"]);
        assert!(opts.foreground && !opts.debug);
        assert_eq!(opts.mode, Mode::CheckCond("1".into()));
        let opts = ok(&["-dr", "-dD", "-Ws", "-f", "a"]);
        assert!(opts.dr && opts.diag && opts.systemd && !opts.debug && !opts.daemon);
    }

    #[test]
    fn prefixes_of_flags_are_refused_whole() {
        for word in ["-qq", "-vvv", "-cf", "-Wx", "-fa.cfg"] {
            assert!(matches!(err(&[word]), CliError::UnknownFlag { .. }), "{word}");
        }
    }

    #[test]
    fn double_dash_then_files_even_dashed_ones() {
        let opts = ok(&["-c", "--", "a.cfg", "-q", "b.cfg"]);
        assert_eq!(opts.files, paths(&["a.cfg", "-q", "b.cfg"]));
        assert!(!opts.quiet);
        let opts = ok(&["-f", "a", "--"]);
        assert_eq!(opts.files, paths(&["a"]));
    }

    #[test]
    fn no_config_file_shows_usage() {
        for words in [&[][..], &["-c"], &["-c", "--"], &["-dKcfg"]] {
            let e = err(words);
            assert_eq!(e, CliError::NoConfigFile, "{words:?}");
            assert!(e.shows_usage());
        }
    }

    #[test]
    fn unknown_flag_shows_usage() {
        let e = err(&["-c", "-f", "a", "-z"]);
        assert_eq!(e, CliError::UnknownFlag { word: "-z".into(), suggestion: None });
        assert!(e.shows_usage());
        assert_eq!(e.to_string(), "unknown option '-z'");
    }

    #[test]
    fn stray_word_shows_usage() {
        let e = err(&["-c", "-f", "a.cfg", "x"]);
        assert_eq!(e, CliError::UnexpectedWord("x".into()));
        assert!(e.shows_usage());
        assert!(matches!(err(&["-f", "a", "-"]), CliError::UnknownFlag { .. }));
    }

    #[test]
    fn missing_values_show_usage() {
        for flag in ["-f", "-p", "-L", "-C", "-m", "-n", "-N", "-x", "-S"] {
            let e = err(&["-c", "-f", "a", flag]);
            assert!(matches!(e, CliError::MissingValue { .. }), "{flag}");
            assert!(e.shows_usage());
        }
        assert_eq!(err(&["-f"]).to_string(), "option -f expects an argument");
        assert_eq!(err(&["-f", "a", "-x"]).to_string(), "Unix socket path expected with the -x flag");
    }

    #[test]
    fn dump_keywords_class_is_attached() {
        assert_eq!(ok(&["-f", "a", "-dKcfg,acl"]).dump_keywords.as_deref(), Some("cfg,acl"));
        assert_eq!(ok(&["-f", "a", "-dK"]).dump_keywords.as_deref(), Some(""));
        // As in HAProxy, a separate class word is a stray argument.
        assert_eq!(err(&["-f", "a", "-dK", "cfg"]), CliError::UnexpectedWord("cfg".into()));
    }

    #[test]
    fn haproxy_tuning_flags_are_accepted() {
        let opts = ok(&["-f", "a", "-de", "-dS", "-dM0x55,fail"]);
        assert_eq!(opts.ignored_flags, vec!["-de", "-dS", "-dM0x55,fail"]);
    }

    #[test]
    fn target_version_in_range() {
        let opts = ok(&["--target-version", "2.8", "-c", "-f", "a"]);
        assert_eq!(opts.target, Version::new(2, 8));
        assert_eq!(ok(&["--target-version=3.4", "-f", "a"]).target, Version::NEWEST);
        assert_eq!(ok(&["--target-version", "2.6.12", "-f", "a"]).target, Version::OLDEST);
    }

    #[test]
    fn target_version_2_5_refused_with_range() {
        let e = err(&["--target-version", "2.5", "-c", "-f", "a"]);
        assert_eq!(e, CliError::UnsupportedTargetVersion(Version::new(2, 5)));
        assert_eq!(e.to_string(), "unsupported --target-version 2.5: hapx speaks HAProxy 2.6 to 3.4");
        assert!(!e.shows_usage());
        assert!(matches!(err(&["--target-version", "3.5", "-f", "a"]), CliError::UnsupportedTargetVersion(_)));
        assert_eq!(err(&["--target-version", "three", "-f", "a"]), CliError::BadTargetVersion("three".into()));
    }

    #[test]
    fn formats() {
        for (name, format) in [
            ("haproxy", OutputFormat::Haproxy),
            ("human", OutputFormat::Human),
            ("json", OutputFormat::Json),
            ("github", OutputFormat::Github),
        ] {
            assert_eq!(ok(&["-f", "a", "--format", name]).format, format);
        }
        assert_eq!(ok(&["-f", "a", "--format=json"]).format, OutputFormat::Json);
        let e = err(&["-f", "a", "--format", "jsno"]);
        assert_eq!(
            e.to_string(),
            "unknown --format 'jsno': expected haproxy, human, json or github; did you mean 'json'?"
        );
    }

    #[test]
    fn near_misses_are_suggested() {
        let suggest = |word: &str| match err(&["-f", "a", word]) {
            CliError::UnknownFlag { suggestion, .. } => suggestion,
            other => panic!("{other:?}"),
        };
        assert_eq!(suggest("--chek"), Some("--check"));
        assert_eq!(suggest("-check"), Some("--check"));
        assert_eq!(suggest("--target-versoin"), Some("--target-version"));
        assert_eq!(suggest("--fromat"), Some("--format"));
        assert_eq!(suggest("-vvv"), Some("-vv"));
        assert_eq!(suggest("--nothing-like-it"), None);
        assert_eq!(err(&["--chek"]).to_string(), "unknown option '--chek'; did you mean '--check'?");
    }

    #[test]
    fn usage_lists_every_flag_of_the_table() {
        let text = usage();
        for flag in FLAGS {
            for name in flag.names {
                assert!(text.contains(name), "{name} missing from usage");
            }
        }
        assert!(text.contains("-sf <pid>..."));
        assert!(text.contains("-dK<class>[,...]"));
        assert!(text.contains("(2.6 to 3.4, default 3.4)"));
        assert!(!text.contains('{'));
    }

    #[test]
    fn version_texts() {
        let short = version_text(false);
        assert!(short.contains(env!("CARGO_PKG_VERSION")));
        assert!(short.contains("2.6 to 3.4"));
        assert!(!short.contains("Feature list"));
        let long = version_text(true);
        assert!(long.starts_with(&short));
        assert!(long.contains("runtime: mode tcp"));
        assert!(long.lines().any(|l| l.starts_with("Feature list : +")));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_pass_but_text_values_are_refused() {
        use std::os::unix::ffi::OsStringExt;
        let odd = OsString::from_vec(vec![b'c', 0xff, b'.', b'c', b'f', b'g']);
        let opts = parse_args([OsString::from("-f"), odd.clone()]).unwrap_or_default();
        assert_eq!(opts.files, vec![PathBuf::from(odd.clone())]);
        let e = parse_args([OsString::from("-f"), "a".into(), "-L".into(), odd]);
        assert_eq!(e, Err(CliError::NotUnicode { flag: "-L" }));
    }

    #[test]
    fn strtol_matches_c() {
        assert_eq!(strtol(b"  42 "), (Some(42), &b" "[..]));
        assert_eq!(strtol(b"abc"), (Some(0), &b"abc"[..]));
        assert_eq!(strtol(b"-7x"), (Some(-7), &b"x"[..]));
        assert_eq!(strtol(b"99999999999999999999").0, None);
    }
}
