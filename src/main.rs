//! `hapx`: HAProxy's command line, then check or run.
use std::io::Write;
use std::process::ExitCode;

use hapx::check::verdict;
use hapx::cli::{self, Mode};
use hapx::config::cond::{self, CondCtx};
use hapx::config::lexer::{self, LexCtx, Vars};
use hapx::config::parser;
use hapx::model::{self, LoadOptions};
use hapx::runtime;

fn main() -> ExitCode {
    env_logger::init();
    let opts = match cli::parse_args(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            if e.shows_usage() {
                print!("{}", cli::version_text(false));
                eprint!("{}", cli::usage());
            }
            return ExitCode::from(1);
        }
    };
    for w in &opts.warnings {
        eprintln!("[WARNING]  ({}) : {w}", std::process::id());
    }
    let code = match &opts.mode {
        Mode::Version => {
            print!("{}", cli::version_text(false));
            0
        }
        Mode::VersionVerbose => {
            print!("{}", cli::version_text(true));
            0
        }
        Mode::Help => {
            eprint!("{}", cli::usage());
            1
        }
        Mode::CheckCond(expr) => check_cond(expr, &opts),
        Mode::Check => check(&opts),
        Mode::Run => run(&opts),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `-cc EXPR`: 0 when true, 1 when false, 2 on a syntax error (as HAProxy).
fn check_cond(expr: &str, opts: &cli::Options) -> i32 {
    let vars = Vars::from_process_env();
    // HAProxy splits the expression like a config line, except that `#` is not a comment.
    let escaped = expr.replace('#', "\\#");
    let ctx = LexCtx { vars: &vars, file: "", line: 0, section: "" };
    let lexed = lexer::split_line(escaped.as_bytes(), &ctx);
    if let Some(e) = lexed.errors.first() {
        eprintln!("[ALERT]    ({}) : config : Failed to evaluate condition: {}", std::process::id(), e.message());
        return 2;
    }
    let words: Vec<String> = lexed.words.into_iter().map(|w| w.text).collect();
    match cond::eval(&words, &CondCtx { version: opts.target, vars: &vars }) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("[ALERT]    ({}) : config : Failed to evaluate condition: {}", std::process::id(), e.message());
            2
        }
    }
}

fn load(opts: &cli::Options) -> model::Loaded {
    if let Some(dir) = &opts.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            eprintln!(
                "[ALERT]    ({}) : Cannot chdir to {} : {}",
                std::process::id(),
                dir.display(),
                parser::io_reason(&e)
            );
        }
    }
    let mut early = Vec::new();
    let files = parser::expand_paths(&opts.files, &mut early);
    let mut vars = Vars::from_process_env();
    let mut loaded = model::load_files(&files, &mut vars, &LoadOptions { version: opts.target, base_dir: None });
    if !early.is_empty() {
        early.append(&mut loaded.diagnostics);
        loaded.diagnostics = early;
    }
    loaded
}

fn check(opts: &cli::Options) -> i32 {
    let loaded = load(opts);
    let (mut err, mut out) = (std::io::stderr().lock(), std::io::stdout().lock());
    let code = verdict::report(&loaded, opts.format, opts.quiet, opts.zero_warning, &mut err, &mut out);
    let _ = out.flush();
    let _ = err.flush();
    // Nothing is left to do: exit without freeing a large config piece by piece.
    std::process::exit(code)
}

/// The one place a start-up error is printed; the exit status that follows it.
fn start_failed(pid: u32, e: &runtime::StartError) -> i32 {
    eprintln!("[ALERT]    ({pid}) : {e}");
    1
}

/// Starting the proxy: the configuration must be valid and everything in it supported.
fn run(opts: &cli::Options) -> i32 {
    let pid = std::process::id();
    // What the run mode cannot do yet is refused, never ignored.
    let refused_flags = [
        (opts.master_worker, "-W/-Ws (master-worker mode)"),
        (opts.old_unix_socket.is_some(), "-x (listeners from an old process)"),
        (!opts.master_cli.is_empty(), "-S (master CLI)"),
    ];
    if let Some((_, what)) = refused_flags.iter().find(|(on, _)| *on) {
        eprintln!("[ALERT]    ({pid}) : {what} is not supported by hapx yet.");
        return 1;
    }
    if !opts.quiet {
        eprintln!("[NOTICE]   ({pid}) : hapx version is {}", env!("CARGO_PKG_VERSION"));
        if let Ok(exe) = std::env::current_exe() {
            eprintln!("[NOTICE]   ({pid}) : path to executable is {}", exe.display());
        }
    }
    let loaded = load(opts);
    let (mut err, mut out) = (std::io::stderr().lock(), std::io::stdout().lock());
    let (v, _) = verdict::verdict(&loaded, opts.zero_warning);
    if v != verdict::Verdict::Valid {
        return verdict::report(&loaded, opts.format, opts.quiet, opts.zero_warning, &mut err, &mut out);
    }
    // HAProxy's own warnings are printed as it prints them; lines hapx cannot run stop it.
    let mut refused = false;
    for d in &loaded.diagnostics {
        if d.code == hapx::check::UNSUPPORTED {
            refused = true;
            let _ = writeln!(err, "[ALERT]    ({pid}) : config : {} Refusing to start.", d.haproxy_text());
        } else if !opts.quiet {
            let _ = writeln!(err, "{}", hapx::check::render::haproxy_line(d, pid));
        }
    }
    if refused {
        return 1;
    }
    drop((err, out));
    let g = &loaded.config.global;
    let run_opts = runtime::RunOptions {
        debug: opts.debug,
        foreground: opts.foreground || opts.debug,
        daemon: opts.daemon || g.daemon,
        pidfile: opts.pidfile.clone().or_else(|| g.pidfile.as_ref().map(std::path::PathBuf::from)),
    };
    let prepared = match runtime::prepare(&loaded.config) {
        Ok(p) => p,
        Err(e) => return start_failed(pid, &e),
    };
    // Listeners are bound: the old processes of a reload can let go of theirs.
    for (pids, hard) in [(&opts.soft_stop_pids, false), (&opts.hard_stop_pids, true)] {
        for &old in pids {
            if let Err(e) = runtime::sys::signal_old_process(old, hard) {
                eprintln!("[WARNING]  ({pid}) : cannot signal old process {old}: {e}");
            }
        }
    }
    // Now the privileges can go, then the terminal.
    if let Err(e) = runtime::sys::drop_privileges(g.chroot.as_deref(), g.gid, g.uid) {
        eprintln!("[ALERT]    ({pid}) : cannot drop privileges: {e}");
        return 1;
    }
    if run_opts.debug {
        eprintln!("Available polling systems :\n      epoll : pref=300,  test result OK\nTotal: 1 (1 usable), will use epoll.\n");
        // As HAProxy: the list on stderr, the choice on stdout.
        println!("Using epoll() as the polling mechanism.");
    }
    if run_opts.daemon && !run_opts.foreground {
        if let Err(e) = runtime::sys::daemonize() {
            eprintln!("[ALERT]    ({pid}) : cannot go to the background: {e}");
            return 1;
        }
    }
    if let Some(path) = &run_opts.pidfile {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            eprintln!("[ALERT]    ({pid}) : Cannot create pidfile {} : {e}", path.display());
        }
    }
    let running = match prepared.launch() {
        Ok(r) => r,
        Err(e) => return start_failed(pid, &e),
    };
    let hard_stop_after = g.hard_stop_after_ms.map(std::time::Duration::from_millis);
    match runtime::supervise(running, hard_stop_after) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("[ALERT]    ({pid}) : {e}");
            1
        }
    }
}
