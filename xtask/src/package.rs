//! `cargo xtask deb`: the Debian package (cargo-deb, with `[package.metadata.deb]` of
//! vipd/Cargo.toml), its man page and shell completions generated from the command line's
//! one definition, and the checks `cargo xtask test` runs on the package it builds.
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::{cargo, run, step, workspace_root};

use vipd::config::cli;

/// The cargo-deb installed when it is missing.
const CARGO_DEB_VERSION: &str = "3.8.0";

/// Where the generated man page and completions go (the package's assets name them).
fn generated_dir() -> PathBuf {
    workspace_root().join("target/package")
}

/// The files the package must hold: path, mode, and whether it is a conffile.
const CONTENTS: &[(&str, u32, bool)] = &[
    ("/usr/sbin/vipd", 0o755, false),
    ("/usr/lib/systemd/system/vipd.service", 0o644, false),
    ("/etc/network/if-up.d/vipd", 0o755, true),
    ("/etc/network/if-down.d/vipd", 0o755, true),
    ("/usr/share/man/man8/vipd.8.gz", 0o644, false),
    ("/usr/share/bash-completion/completions/vipd", 0o644, false),
    ("/usr/share/zsh/vendor-completions/_vipd", 0o644, false),
    (
        "/usr/share/fish/vendor_completions.d/vipd.fish",
        0o644,
        false,
    ),
    ("/usr/share/doc/vipd/README.md", 0o644, false),
    ("/usr/share/doc/vipd/status-json.md", 0o644, false),
    ("/usr/share/doc/vipd/copyright", 0o644, false),
    ("/usr/share/doc/vipd/examples/vipd.toml", 0o644, false),
    (
        "/usr/share/doc/vipd/examples/vipd-all-fields.toml",
        0o644,
        false,
    ),
];

/// Builds the package; returns its path.
pub fn build() -> Result<PathBuf> {
    crate::build_all()?;
    step("generating the man page and the shell completions");
    generate(&generated_dir())?;
    ensure_cargo_deb()?;
    step("building the Debian package (cargo-deb)");
    let out = workspace_root().join("target/debian");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    run(cargo("stable")
        .args(["deb", "-p", "vipd", "--no-build", "--locked", "--output"])
        .arg(&out))?;
    let debs: Vec<PathBuf> = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    match debs.as_slice() {
        [deb] => {
            eprintln!("    {}", deb.display());
            Ok(deb.clone())
        }
        _ => bail!("expected one .deb in {}, found {debs:?}", out.display()),
    }
}

/// vipd.8.gz and the bash, zsh and fish completions, into `dir`.
pub fn generate(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let man = dir.join("vipd.8");
    std::fs::write(&man, man_page()?)?;
    run(Command::new("gzip").args(["-9nf"]).arg(&man))?;
    for (shell, name) in [
        (clap_complete::Shell::Bash, "vipd.bash"),
        (clap_complete::Shell::Zsh, "_vipd"),
        (clap_complete::Shell::Fish, "vipd.fish"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cli::command(), "vipd", &mut text);
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// The man page: the command's, then each subcommand's synopsis, description and options,
/// then files, signals and exit status.
fn man_page() -> Result<Vec<u8>> {
    let mut cmd = cli::command().disable_help_subcommand(true);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Manager's Manual")
        .source(format!("vipd {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    // Listed by name: the details follow on this page, not on pages of their own.
    let mut subs = Vec::new();
    man.render_subcommands_section(&mut subs)?;
    let mut subs = String::from_utf8(subs)?;
    for sub in cmd.get_subcommands() {
        let name = sub.get_name().replace('-', "\\-");
        subs = subs.replace(
            &format!("vipd\\-{name}(8)"),
            &format!("\\fBvipd {name}\\fR"),
        );
    }
    page.extend_from_slice(subs.as_bytes());
    writeln!(page, ".SH \"COMMANDS IN DETAIL\"")?;
    for sub in cmd.get_subcommands() {
        let sub = sub.clone().display_name(format!("vipd {}", sub.get_name()));
        let sub_man = clap_mangen::Man::new(sub.clone());
        let mut part = Vec::new();
        sub_man.render_synopsis_section(&mut part)?;
        let synopsis = String::from_utf8(part)?;
        writeln!(page, ".SS \"vipd {}\"", sub.get_name())?;
        page.extend_from_slice(section_body(&synopsis).as_bytes());
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            writeln!(page, ".PP\n{}", roff_text(&about.to_string()))?;
        }
        // Its own arguments: the global ones are in OPTIONS above, --help everywhere.
        let local: Vec<clap::Arg> = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_global_set() && a.get_id() != "help")
            .cloned()
            .collect();
        if !local.is_empty() {
            let mut part = Vec::new();
            let only_local = local
                .into_iter()
                .fold(clap::Command::new("x").disable_help_flag(true), |c, a| {
                    c.arg(a)
                });
            clap_mangen::Man::new(only_local).render_options_section(&mut part)?;
            let options = String::from_utf8(part)?;
            page.extend_from_slice(section_body(&options).as_bytes());
        }
    }
    let mut extra = Vec::new();
    man.render_extra_section(&mut extra)?;
    let extra = String::from_utf8(extra)?;
    page.extend_from_slice(
        extra
            .replacen(".SH EXTRA", ".SH \"FILES, SIGNALS, EXIT STATUS\"", 1)
            .as_bytes(),
    );
    writeln!(
        page,
        ".SH \"SEE ALSO\"\nREADME.md (operation, migration from ucarp), status\\-json.md (the \
         schema of \\fBvipd status \\-\\-json\\fR) and examples/ in /usr/share/doc/vipd/."
    )?;
    Ok(page)
}

/// A rendered section without its heading (and the string definitions clap_mangen puts
/// before each), to be placed under a heading of this page.
fn section_body(roff: &str) -> String {
    let mut heading_seen = false;
    roff.lines()
        .filter(|l| !l.starts_with(".ie \\n(.g .ds Aq") && !l.starts_with(".el .ds Aq"))
        .filter(|l| {
            let heading = !heading_seen && l.starts_with(".SH ");
            heading_seen |= heading;
            !heading
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Text for a roff paragraph: no line starting with a control character, backslashes
/// escaped.
fn roff_text(s: &str) -> String {
    s.replace('\\', "\\e")
        .lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn cargo_deb_works() -> bool {
    cargo("stable")
        .args(["deb", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ensure_cargo_deb() -> Result<()> {
    if cargo_deb_works() {
        return Ok(());
    }
    step(&format!("installing cargo-deb {CARGO_DEB_VERSION}"));
    run(cargo("stable").args([
        "install",
        "cargo-deb",
        "--version",
        CARGO_DEB_VERSION,
        "--locked",
    ]))?;
    if !cargo_deb_works() {
        bail!("cargo-deb was installed but `cargo deb --version` fails; is ~/.cargo/bin on PATH?");
    }
    Ok(())
}

/// Output of a command that must succeed.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Checks the package: control fields, every file with its mode and owner, the conffiles
/// and maintainer scripts; then, extracted into a scratch root, that the binary runs, the
/// example configurations are valid, the unit passes `systemd-analyze verify`, the man
/// page renders without warnings and the scripts parse.
pub fn check(deb: &Path) -> Result<()> {
    step(&format!("checking {}", deb.display()));
    let field = |name: &str| -> Result<String> {
        Ok(
            output(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))?
                .trim()
                .to_owned(),
        )
    };
    ensure!(field("Package")? == "vipd", "Package is not vipd");
    let version = field("Version")?;
    ensure!(
        version.starts_with(&format!("{}-", env!("CARGO_PKG_VERSION"))),
        "Version {version:?} is not the workspace's ({})",
        env!("CARGO_PKG_VERSION")
    );
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    ensure!(
        field("Architecture")? == arch.trim(),
        "Architecture is not {arch}"
    );
    ensure!(field("Section")? == "net", "Section is not net");
    ensure!(field("Priority")? == "optional", "Priority is not optional");
    ensure!(
        field("Maintainer")?.contains('@'),
        "Maintainer has no address"
    );
    let depends = field("Depends")?;
    ensure!(depends.contains("libc6"), "Depends {depends:?} lacks libc6");
    ensure!(field("Conflicts")? == "ucarp", "Conflicts is not ucarp");
    ensure!(
        !field("Description")?.is_empty(),
        "the description is empty"
    );

    // Every file, with its mode and owner; nothing else than these and their folders.
    let listing = output(Command::new("dpkg-deb").arg("-c").arg(deb))?;
    let mut files = std::collections::BTreeMap::new();
    for line in listing.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        ensure!(cols.len() >= 6, "unexpected listing line {line:?}");
        ensure!(
            cols[1] == "root/root" || cols[1] == "0/0",
            "{line:?} is not owned by root"
        );
        let path = cols[5].trim_start_matches('.').to_owned();
        if !cols[0].starts_with('d') {
            files.insert(path, cols[0].to_owned());
        }
    }
    for &(path, mode, _) in CONTENTS {
        let want = mode_string(mode);
        match files.get(path) {
            None => bail!("the package lacks {path}"),
            Some(got) if *got != want => bail!("{path} has mode {got}, not {want}"),
            Some(_) => {}
        }
    }
    let unexpected: Vec<&String> = files
        .keys()
        .filter(|p| !CONTENTS.iter().any(|(c, _, _)| c == p))
        .collect();
    ensure!(
        unexpected.is_empty(),
        "the package holds files it should not: {unexpected:?}"
    );

    let control = tempdir("vipd-deb-control")?;
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(deb)
        .arg(control.path()))?;
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap_or_default();
    let mut conffiles: Vec<&str> = conffiles.lines().collect();
    conffiles.sort();
    let mut want: Vec<&str> = CONTENTS.iter().filter(|c| c.2).map(|c| c.0).collect();
    want.sort();
    ensure!(
        conffiles == want,
        "conffiles are {conffiles:?}, not {want:?}"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = control.path().join(script);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("the package has no {script}"))?;
        ensure!(
            !text.contains("#DEBHELPER#"),
            "{script} kept its #DEBHELPER# token"
        );
        run(Command::new("sh").arg("-n").arg(&path))?;
    }
    let postinst = std::fs::read_to_string(control.path().join("postinst"))?;
    ensure!(
        postinst.contains("deb-systemd-helper") && postinst.contains("vipd.service"),
        "postinst does not enable vipd.service"
    );

    // Installed into a scratch root.
    let root = tempdir("vipd-deb-root")?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root.path()))?;
    let r = root.path();
    let vipd = r.join("usr/sbin/vipd");
    let v = output(Command::new(&vipd).arg("--version"))?;
    ensure!(
        v.trim() == format!("vipd {}", env!("CARGO_PKG_VERSION")),
        "vipd --version says {v:?}"
    );
    for example in ["vipd.toml", "vipd-all-fields.toml"] {
        let file = r.join("usr/share/doc/vipd/examples").join(example);
        output(Command::new(&vipd).arg("check-config").arg(&file))?;
    }
    for hook in ["etc/network/if-up.d/vipd", "etc/network/if-down.d/vipd"] {
        run(Command::new("sh").arg("-n").arg(r.join(hook)))?;
    }
    run(Command::new("bash")
        .arg("-n")
        .arg(r.join("usr/share/bash-completion/completions/vipd")))?;
    // The man page renders without a warning and documents every subcommand.
    let man = Command::new("man")
        .args(["--warnings", "-E", "UTF-8", "-l"])
        .arg(r.join("usr/share/man/man8/vipd.8.gz"))
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
        .context("running man")?;
    let warnings = String::from_utf8_lossy(&man.stderr);
    ensure!(
        man.status.success() && warnings.trim().is_empty(),
        "man vipd.8: {warnings}"
    );
    let source = output(Command::new("zcat").arg(r.join("usr/share/man/man8/vipd.8.gz")))?
        .replace("\\-", "-");
    for word in [
        "vipd run",
        "vipd reload",
        "vipd status",
        "vipd check-config",
        "--json",
    ] {
        ensure!(
            source.contains(word),
            "the man page does not mention {word}"
        );
    }
    ensure!(
        source.contains("COMMANDS IN DETAIL") && !source.contains("(8)\n"),
        "the man page refers to pages that do not exist"
    );
    // The unit, as systemd would load it from the installed tree (with the host's targets
    // it refers to): any complaint fails.
    let units = r.join("usr/lib/systemd/system");
    for dep in [
        "network-online.target",
        "multi-user.target",
        "sysinit.target",
        "basic.target",
        "shutdown.target",
    ] {
        let from = Path::new("/usr/lib/systemd/system").join(dep);
        if from.exists() {
            std::fs::copy(&from, units.join(dep))?;
        }
    }
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", r.display()))
        .arg("vipd.service")
        .output()
        .context("running systemd-analyze")?;
    let complaints = String::from_utf8_lossy(&verify.stderr);
    ensure!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify vipd.service: {complaints}"
    );
    step("the package holds every file, with its mode, and what it installs works");
    Ok(())
}

/// `-rwxr-xr-x` for 0o755.
fn mode_string(mode: u32) -> String {
    let mut s = String::from("-");
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// A scratch directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(tag: &str) -> Result<TempDir> {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(TempDir(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_dpkg_deb_lists_them() {
        assert_eq!(mode_string(0o755), "-rwxr-xr-x");
        assert_eq!(mode_string(0o644), "-rw-r--r--");
        assert_eq!(mode_string(0o600), "-rw-------");
    }

    #[test]
    fn the_man_page_documents_every_subcommand_and_option() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        for word in [
            "vipd run",
            "vipd reload",
            "vipd check\\-config",
            "\\-\\-syslog",
            "\\-\\-json",
            "\\-\\-xdp\\-mode",
            "SIGHUP",
        ] {
            assert!(page.contains(word), "{word} missing from:\n{page}");
        }
    }
}
