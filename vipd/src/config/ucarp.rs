//! ucarp's command line: its flags (see [`super::cli::UcarpArgs`]) mapped onto the one
//! group they describe, validated as a configuration file is.
use super::cli::UcarpArgs;
use super::{Config, ConfigError, RawGroup};

/// The one group ucarp's flags describe, validated as a configuration file is.
pub fn config_of(args: UcarpArgs) -> Result<Config, ConfigError> {
    let pass_on_command_line = args.pass.is_some();
    let mut config = Config::from_raw(vec![raw_group(args)], |_| String::from("--"))?;
    if pass_on_command_line {
        config.warnings.insert(
            0,
            "the password given with --pass (-p) is visible to every local user (ps); \
             --passfile (-o) with a file of mode 600 keeps it secret"
                .to_owned(),
        );
    }
    Ok(config)
}

/// The group ucarp's flags describe, before validation.
pub fn raw_group(args: UcarpArgs) -> RawGroup {
    RawGroup {
        interface: args.interface,
        vhid: args.vhid,
        vips: args.addr,
        srcip: args.srcip,
        password: args.pass,
        password_file: args.passfile,
        advbase: args.advbase,
        advskew: args.advskew,
        preempt: args.preempt,
        neutral: args.neutral,
        dead_ratio: args.deadratio,
        upscript: args.upscript,
        downscript: args.downscript,
        xparam: args.xparam,
        shutdown_script: args.shutdown,
        multicast: args.mcast,
        broadcast: args.nomcast,
        peers: args.peer,
        peer_ttl_check: args.no_peer_ttl_check.then_some(false),
        ignore_ifstate: args.ignoreifstate,
        script_user: args.script_user,
        script_security: Some(!args.no_script_security),
        drain_limit_ms: args.drain_limit.map(secs_to_ms),
        drain_on_stop_ms: args.drain_on_stop.map(secs_to_ms),
        ..RawGroup::default()
    }
}

/// Seconds from the command line as milliseconds (negative: 0; the configuration's
/// checks bound the rest).
fn secs_to_ms(secs: f64) -> u64 {
    (secs.max(0.0) * 1000.0).round() as u64
}

/// Config field names as the ucarp flags the user typed.
pub fn flag_names(msg: &str) -> String {
    const FLAGS: &[(&str, &str)] = &[
        ("--interface:", "--interface (-i):"),
        ("--vhid:", "--vhid (-v):"),
        ("--vips:", "--addr (-a):"),
        ("--srcip:", "--srcip (-s):"),
        ("--password:", "--pass (-p):"),
        ("--password_file:", "--passfile (-o):"),
        ("--advbase:", "--advbase (-b):"),
        ("--advskew:", "--advskew (-k):"),
        ("--dead_ratio:", "--deadratio (-r):"),
        ("--upscript:", "--upscript (-u):"),
        ("--downscript:", "--downscript (-d):"),
        ("--multicast:", "--mcast (-m):"),
        ("--peers:", "--peer:"),
        ("--peer_ttl_check:", "--no-peer-ttl-check:"),
        ("--facility:", "--facility (-f):"),
        ("--script_user:", "--script-user:"),
    ];
    for (from, to) in FLAGS {
        if let Some(rest) = msg.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    msg.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cli::Cli;
    use clap::Parser;

    fn ucarp(args: &[&str]) -> UcarpArgs {
        let mut all = vec!["vipd"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().ucarp
    }

    #[test]
    fn a_password_on_the_command_line_is_warned_about() {
        let c = config_of(ucarp(&[
            "-i",
            "eth0",
            "-v",
            "1",
            "-p",
            "x",
            "-a",
            "10.0.0.100",
        ]))
        .unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("--pass (-p)"), "{:?}", c.warnings);
    }

    #[test]
    fn script_flags_reach_the_group() {
        let c = config_of(ucarp(&[
            "-i",
            "eth0",
            "-v",
            "1",
            "-p",
            "x",
            "-a",
            "10.0.0.100",
            "--script-user",
            "root",
            "-u",
            "/bin/sh",
        ]))
        .unwrap();
        assert_eq!(c.groups[0].script_user.as_ref().unwrap().uid, 0);
        let err = config_of(ucarp(&[
            "-i",
            "eth0",
            "-v",
            "1",
            "-p",
            "x",
            "-a",
            "10.0.0.100",
            "--script-user",
            "no-such-user-vipd",
        ]))
        .unwrap_err();
        assert_eq!(
            flag_names(&err.to_string()),
            "--script-user: no such user: \"no-such-user-vipd\""
        );
    }
}
