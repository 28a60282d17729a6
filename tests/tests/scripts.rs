//! Up and down scripts under hostile conditions: a script that outlives its timeout and
//! leaves children behind, a script others could change, a script run as an unprivileged
//! user.
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vipd_tests::{Lab, SUBNET_PREFIX, VIP, node_addr, vipd_bin};

const SEC: Duration = Duration::from_secs(1);

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes a shell script with `mode` (whatever the umask).
fn script(path: &Path, body: &str, mode: u32) {
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    chmod(path, mode);
}

/// A lab whose scratch directory only root can change, as scripts kept there need.
fn lab(tag: &str) -> Lab {
    let lab = Lab::new(tag, 1).unwrap();
    chmod(lab.dir(), 0o755);
    lab
}

/// Pids of the processes whose command line holds `pattern`.
fn pgrep(pattern: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Runs vipd (at most 20 s) in node 1's namespace; returns its exit code and stderr.
fn run_vipd(lab: &Lab, args: &[&str]) -> (Option<i32>, String) {
    let out = lab.nodes[0]
        .cmd("timeout")
        .arg("20")
        .arg(vipd_bin())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn script_timeout_kills_its_whole_process_group() {
    let mut lab = lab("scriptkill");
    let marker = format!(
        "vipd-marker-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let up = lab.dir().join("up.sh");
    // A child in the background, then a wait past the timeout.
    script(
        &up,
        &format!("sh -c 'sleep 60; : {marker}' &\nsleep 60\n"),
        0o755,
    );
    let conf = lab.dir().join("vipd.toml");
    std::fs::write(
        &conf,
        format!(
            "[[group]]\ninterface = 'eth0'\nvhid = 1\nvips = ['{VIP}/{SUBNET_PREFIX}']\n\
             srcip = '{}'\npassword = 'secret'\nupscript = '{}'\nscript_timeout_ms = 3000\n",
            node_addr(1),
            up.display()
        ),
    )
    .unwrap();
    chmod(&conf, 0o600);
    lab.start_vipd(0, &["run", "--config", &conf.to_string_lossy()])
        .unwrap();
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    let up_path = up.to_string_lossy().into_owned();
    assert!(
        Lab::wait_for(3 * SEC, || !pgrep(&marker).is_empty()
            && !pgrep(&up_path).is_empty()),
        "the up script and its child never ran:\n{}",
        lab.log_text(0)
    );
    assert!(
        Lab::wait_for(8 * SEC, || pgrep(&marker).is_empty()
            && pgrep(&up_path).is_empty()),
        "processes of the script survived its timeout: child {:?}, script {:?}\n{}",
        pgrep(&marker),
        pgrep(&up_path),
        lab.log_text(0)
    );
    assert!(
        lab.log_text(0)
            .contains("script timed out and was killed with its process group"),
        "{}",
        lab.log_text(0)
    );
    // The daemon goes on.
    assert_eq!(lab.state(0, 1), "MASTER");
}

#[test]
fn script_others_can_change_is_refused_at_start() {
    let lab = lab("scriptrefuse");
    let dir = lab.dir();
    let up = dir.join("up.sh");
    script(&up, "exit 0\n", 0o777);
    let up_s = up.to_string_lossy().into_owned();
    let flags = lab.ucarp_flags(0, 0, &["-u", &up_s]);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, err) = run_vipd(&lab, &args);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "vipd: --upscript (-u): {up_s} is writable by group or others (mode 777)"
        )),
        "{err}"
    );
    // In a configuration file too, where check-config says the same.
    let conf = dir.join("vipd.toml");
    std::fs::write(
        &conf,
        format!(
            "[[group]]\ninterface = 'eth0'\nvhid = 1\nvips = ['{VIP}']\npassword = 'x'\n\
             downscript = '{up_s}'\n"
        ),
    )
    .unwrap();
    chmod(&conf, 0o600);
    let conf_s = conf.to_string_lossy().into_owned();
    for cmd in ["run --config", "check-config"] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push(&conf_s);
        let (code, err) = run_vipd(&lab, &args);
        assert_eq!(code, Some(2), "{cmd}: {err}");
        assert!(
            err.starts_with(&format!("vipd: group[0].downscript: {up_s} is writable")),
            "{cmd}: {err}"
        );
    }
    // A safe script in a directory anyone can write to (no sticky bit) is refused, naming
    // the directory; with the sticky bit, as /tmp has, it is accepted.
    let open = dir.join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let inner = open.join("up.sh");
    script(&inner, "exit 0\n", 0o755);
    let inner_s = inner.to_string_lossy().into_owned();
    let flags = lab.ucarp_flags(0, 0, &["-u", &inner_s]);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, err) = run_vipd(&lab, &args);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "vipd: --upscript (-u): {} (a directory above {inner_s}) is writable by group or others",
            open.display()
        )),
        "{err}"
    );
    chmod(&open, 0o1777);
    std::fs::write(
        &conf,
        format!(
            "[[group]]\ninterface = 'eth0'\nvhid = 1\nvips = ['{VIP}']\npassword = 'x'\n\
             upscript = '{inner_s}'\n"
        ),
    )
    .unwrap();
    let (code, err) = run_vipd(&lab, &["check-config", &conf_s]);
    assert_eq!(code, Some(0), "{err}");
    // script_security = false lets it through.
    chmod(&open, 0o777);
    let (code, err) = run_vipd(&lab, &["check-config", &conf_s]);
    assert_eq!(code, Some(2), "{err}");
    std::fs::write(
        &conf,
        format!(
            "[[group]]\ninterface = 'eth0'\nvhid = 1\nvips = ['{VIP}']\npassword = 'x'\n\
             upscript = '{inner_s}'\nscript_security = false\n"
        ),
    )
    .unwrap();
    let (code, err) = run_vipd(&lab, &["check-config", &conf_s]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn script_user_runs_the_scripts_as_that_user_and_its_groups() {
    let mut lab = lab("scriptuser");
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
        assert!(out.status.success(), "no user nobody on this host");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (uid, gid, groups) = (id("-u"), id("-g"), id("-G"));
    // The script is root's; what it writes goes to a directory nobody can write to.
    let out = lab.dir().join("out");
    std::fs::create_dir(&out).unwrap();
    chmod(&out, 0o777);
    let up = lab.dir().join("up.sh");
    script(
        &up,
        &format!(
            "{{ id -u; id -g; id -G; echo \"$1 $2\"; }} > {o}/id.tmp && mv {o}/id.tmp {o}/id\n",
            o = out.display()
        ),
        0o755,
    );
    lab.start_node(
        0,
        0,
        &["-u", &up.to_string_lossy(), "--script-user", "nobody"],
    )
    .unwrap();
    assert!(
        lab.wait_state(0, 1, "MASTER", 8 * SEC),
        "{}",
        lab.log_text(0)
    );
    let result = out.join("id");
    assert!(
        Lab::wait_for(5 * SEC, || result.exists()),
        "the up script did not run:\n{}",
        lab.log_text(0)
    );
    let text = std::fs::read_to_string(&result).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            uid.as_str(),
            gid.as_str(),
            groups.as_str(),
            &format!("eth0 {VIP}")
        ],
        "uid, gid, groups of the script, and its arguments"
    );
    assert_eq!(
        std::fs::metadata(&result).unwrap().uid().to_string(),
        uid,
        "the file the script wrote is nobody's"
    );
    // An unknown user is a usage error.
    let flags = lab.ucarp_flags(0, 0, &["--script-user", "no-such-user-vipd"]);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, err) = run_vipd(&lab, &args);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "vipd: --script-user: no such user: \"no-such-user-vipd\""
    );
}
