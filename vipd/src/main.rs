//! `vipd`: with ucarp's flags and no subcommand, a drop-in for one ucarp process; with
//! `run --config`, any number of groups; `status`, `demote`, `promote` talk to a running
//! daemon; `check-config` validates a file. Bad flags or values exit with code 2. The
//! command line itself is defined in `vipd::config::cli`.
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use clap::Parser;
use vipd::config::cli::{Cli, Cmd, TargetArgs, UcarpArgs, XdpMode};
use vipd::config::{self, Config};
use vipd::daemon::{self, Options};
use vipd::kernel::dataplane::XdpPreference;
use vipd::ops::control::{self, Reply, Request, Target};

/// Where the log goes.
enum LogTo {
    Stderr,
    /// Syslog (through /dev/log), in the background (`-B`) or not (`run --syslog`).
    Syslog {
        facility: syslog::Facility,
        background: bool,
    },
}

type SyslogLogger = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// Writes each log line to syslog with the severity of its level.
#[derive(Clone)]
struct Syslog(Arc<Mutex<SyslogLogger>>);

/// One log line on its way to syslog: sent when dropped.
struct SyslogLine {
    to: Arc<Mutex<SyslogLogger>>,
    level: tracing::Level,
    buf: Vec<u8>,
}

impl std::io::Write for SyslogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        // The level is the severity already; fmt pads its name with a space.
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let mut logger = self.to.lock().unwrap_or_else(|e| e.into_inner());
        if syslog_send(&mut logger, self.level, text).is_err() {
            // The syslog daemon restarted: connect again, once per line.
            if let Ok(fresh) = syslog::unix(logger.formatter.clone()) {
                *logger = fresh;
                let _ = syslog_send(&mut logger, self.level, text);
            }
        }
    }
}

fn syslog_send(l: &mut SyslogLogger, level: tracing::Level, text: &str) -> syslog::Result<()> {
    match level {
        tracing::Level::ERROR => l.err(text),
        tracing::Level::WARN => l.warning(text),
        tracing::Level::INFO => l.info(text),
        _ => l.debug(text),
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        self.line(tracing::Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine {
        self.line(*meta.level())
    }
}

impl Syslog {
    fn line(&self, level: tracing::Level) -> SyslogLine {
        SyslogLine {
            to: self.0.clone(),
            level,
            buf: Vec::new(),
        }
    }
}

fn log_filter(debug: bool) -> tracing_subscriber::EnvFilter {
    let default = if debug { "vipd=debug" } else { "vipd=info" };
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
}

/// The log as syslog gets it: no colours, no timestamp (syslog adds its own).
fn syslog_subscriber(debug: bool, to: Syslog) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(debug))
        .with_writer(to)
        .with_ansi(false)
        .without_time()
        .finish()
}

fn init_tracing(debug: bool, to: Option<Syslog>) {
    match to {
        Some(to) => {
            let _ = tracing::subscriber::set_global_default(syslog_subscriber(debug, to));
        }
        None => tracing_subscriber::fmt()
            .with_env_filter(log_filter(debug))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Usage error: one line, exit code 2.
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("vipd: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            return usage(first.trim_start_matches("error: "));
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let opts = Options {
        control_socket: cli
            .control_socket
            .clone()
            .unwrap_or_else(control::default_socket),
        bpffs_dir: cli
            .bpffs_dir
            .clone()
            .unwrap_or_else(vipd::kernel::dataplane::default_pin_dir),
        xdp_mode: match cli.xdp_mode {
            XdpMode::Auto => XdpPreference::Auto,
            XdpMode::Native => XdpPreference::Native,
            XdpMode::Generic => XdpPreference::Generic,
            XdpMode::Tc => XdpPreference::Tc,
        },
        rt_priority: (cli.rt_priority > 0).then_some(cli.rt_priority),
        metrics_listen: cli.metrics_listen,
        config_file: None,
    };
    if cli.cmd.is_some() && cli.ucarp != UcarpArgs::default() {
        return usage("ucarp-style flags (-i, -v, ...) cannot be combined with a subcommand");
    }
    match cli.cmd {
        None => {
            let debug = cli.ucarp.debug;
            let facility = match cli.ucarp.facility.as_deref().map(config::syslog_facility) {
                None => syslog::Facility::LOG_DAEMON,
                Some(Ok(f)) => f,
                Some(Err(e)) => return usage(config::ucarp::flag_names(&format!("--{e}"))),
            };
            let log = if cli.ucarp.daemonize {
                LogTo::Syslog {
                    facility,
                    background: true,
                }
            } else {
                LogTo::Stderr
            };
            let config = match config::ucarp::config_of(cli.ucarp) {
                Ok(c) => c,
                Err(e) => return usage(config::ucarp::flag_names(&e.to_string())),
            };
            serve(config, opts, debug, log)
        }
        Some(Cmd::Run { config, syslog }) => match Config::load(&config) {
            Ok(c) => serve(
                c,
                Options {
                    config_file: Some(config),
                    ..opts
                },
                false,
                if syslog {
                    LogTo::Syslog {
                        facility: syslog::Facility::LOG_DAEMON,
                        background: false,
                    }
                } else {
                    LogTo::Stderr
                },
            ),
            Err(e) => usage(e),
        },
        Some(Cmd::Reload) => client(&opts, Request::Reload, false),
        Some(Cmd::CheckConfig { file }) => match Config::load(&file) {
            Ok(c) => {
                for w in &c.warnings {
                    eprintln!("vipd: warning: {w}");
                }
                println!("{}: {} group(s), valid", file.display(), c.groups.len());
                ExitCode::SUCCESS
            }
            Err(e) => usage(e),
        },
        Some(Cmd::Status { json }) => client(&opts, Request::Status, json),
        Some(Cmd::Demote(d)) => match (target(d.target), d.drain) {
            (Ok(target), None) => client(
                &opts,
                Request::Demote {
                    target,
                    persist: d.persist,
                },
                false,
            ),
            (Ok(target), Some(limit)) => match limit.map(drain_limit_ms).transpose() {
                Ok(limit_ms) => client(
                    &opts,
                    Request::Drain {
                        target,
                        limit_ms,
                        persist: d.persist,
                    },
                    false,
                ),
                Err(e) => {
                    eprintln!("vipd: --drain: {e}");
                    ExitCode::from(2)
                }
            },
            (Err(code), _) => code,
        },
        Some(Cmd::Promote(t)) => match target(t) {
            Ok(target) => client(&opts, Request::Promote { target }, false),
            Err(code) => code,
        },
    }
}

/// `--drain=LIMIT` in seconds, as milliseconds.
fn drain_limit_ms(secs: f64) -> Result<u64, String> {
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{secs} is not in (0, 86400] seconds"));
    }
    Ok((secs * 1000.0).round().max(1.0) as u64)
}

fn target(t: TargetArgs) -> Result<Target, ExitCode> {
    match (t.vhid, t.all) {
        (Some(0), _) => Err(usage("vhid: 0 is not in 1..=255")),
        (Some(v), false) => Ok(Target::Vhid(v)),
        (None, true) => Ok(Target::All),
        _ => Err(usage("give a VHID or --all")),
    }
}

fn serve(config: Config, opts: Options, debug: bool, log: LogTo) -> ExitCode {
    match log {
        LogTo::Stderr => init_tracing(debug, None),
        LogTo::Syslog {
            facility,
            background,
        } => {
            // Connected before going to the background, so that a failure can be told.
            let logger = syslog::unix(syslog::Formatter3164 {
                facility,
                hostname: None,
                process: "vipd".into(),
                pid: std::process::id(),
            });
            let logger = match logger {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("vipd: cannot reach syslog ({e}); running without a log");
                    None
                }
            };
            if background && let Err(e) = nix::unistd::daemon(true, false) {
                eprintln!("vipd: cannot daemonize: {e}");
                return ExitCode::FAILURE;
            }
            init_tracing(
                debug,
                logger.map(|mut l| {
                    l.formatter.pid = std::process::id();
                    Syslog(Arc::new(Mutex::new(l)))
                }),
            );
        }
    }
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let result = runtime().and_then(|rt| rt.block_on(daemon::run(config, opts)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("vipd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn client(opts: &Options, req: Request, json: bool) -> ExitCode {
    let result = runtime().and_then(|rt| {
        rt.block_on(control::call(&opts.control_socket, &req))
            .map_err(anyhow::Error::from)
    });
    match result {
        Ok(Reply::Status(s)) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&s).expect("status serializes")
            );
            ExitCode::SUCCESS
        }
        Ok(Reply::Status(s)) => {
            print!("{}", control::render(&s));
            ExitCode::SUCCESS
        }
        Ok(Reply::Reloaded { summary }) => {
            println!("reloaded: {summary}");
            ExitCode::SUCCESS
        }
        Ok(Reply::Ok { changed }) => {
            let list: Vec<String> = changed.iter().map(|v| v.to_string()).collect();
            println!("ok: vhid {}", list.join(", "));
            ExitCode::SUCCESS
        }
        Ok(Reply::Error { message }) => usage(message),
        Err(e) => {
            eprintln!("vipd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn log_lines_reach_syslog_with_the_facility_and_the_level() {
        let path = std::env::temp_dir().join(format!("vipd-syslog-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let logger = syslog::unix_custom(
            syslog::Formatter3164 {
                facility: config::syslog_facility("local3").unwrap(),
                hostname: None,
                process: "vipd".into(),
                pid: 42,
            },
            &path,
        )
        .unwrap();
        let to = Syslog(Arc::new(Mutex::new(logger)));
        tracing::subscriber::with_default(syslog_subscriber(false, to), || {
            tracing::warn!(vhid = 7, "master down");
            tracing::info!("up script done");
            tracing::debug!("not with -D off");
        });
        let mut buf = [0u8; 2048];
        let mut got = Vec::new();
        for _ in 0..2 {
            let n = server.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        std::fs::remove_file(&path).unwrap();
        // local3 is facility 19; warning is severity 4, info 6.
        assert!(got[0].starts_with("<156>"), "{got:?}");
        assert!(
            got[0].contains(" vipd[42]: ") && got[0].contains("master down vhid=7"),
            "{got:?}"
        );
        assert!(
            !got[0].contains('\x1b') && !got[0].ends_with('\n'),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("<158>") && got[1].contains("up script done"),
            "{got:?}"
        );
        server.set_nonblocking(true).unwrap();
        assert!(server.recv(&mut buf).is_err(), "debug is filtered out");
    }

    #[test]
    fn facilities_go_by_ucarp_names() {
        use syslog::Facility::*;
        for (name, want) in [
            ("daemon", LOG_DAEMON),
            ("LOCAL0", LOG_LOCAL0),
            ("local7", LOG_LOCAL7),
            ("user", LOG_USER),
        ] {
            assert_eq!(config::syslog_facility(name).unwrap() as u8, want as u8);
        }
        let err = config::syslog_facility("local8").unwrap_err().to_string();
        assert_eq!(
            config::ucarp::flag_names(&format!("--{err}"))
                .split(" (daemon")
                .next()
                .unwrap(),
            "--facility (-f): unknown syslog facility \"local8\""
        );
    }

    #[test]
    fn run_reads_the_default_configuration_file() {
        assert_eq!(vipd::config::cli::DEFAULT_CONFIG, config::DEFAULT_PATH);
        match Cli::try_parse_from(["vipd", "run"]).unwrap().cmd {
            Some(Cmd::Run { config, syslog }) => {
                assert_eq!(config.to_str(), Some(config::DEFAULT_PATH));
                assert!(!syslog);
            }
            _ => panic!("not run"),
        }
    }
}
