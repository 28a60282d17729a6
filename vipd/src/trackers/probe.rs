//! Probing trackers: tcp, http, script, each probe bounded by its timeout.
use super::*;

/// Runs `probe` every `interval` (the first at once), each bounded by its own timeout,
/// which is at most the interval: probes of one tracker never overlap.
pub(super) async fn run_probes<F, P>(out: Out, mut h: Hysteresis, interval: Duration, mut probe: P)
where
    P: FnMut() -> F + Send,
    F: Future<Output = Result<(), String>> + Send,
{
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = probe().await;
        out.observe(&mut h, &result).await;
    }
}

/// A TCP connection to `address` within `timeout`. The connection is closed with a reset,
/// so that frequent probes leave no TIME_WAIT sockets behind.
pub(super) async fn tcp_probe(address: SocketAddr, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Err(_) => Err(format!(
            "no connection to {address} within {} ms",
            timeout.as_millis()
        )),
        Ok(Err(e)) => Err(format!("connecting to {address}: {e}")),
        Ok(Ok(stream)) => {
            let _ = stream.set_zero_linger();
            Ok(())
        }
    }
}

/// The request an HTTP tracker sends.
pub fn http_request(host: &str, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vipd\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n"
    )
}

pub(super) async fn http_probe(
    address: SocketAddr,
    request: String,
    expect: u16,
    timeout: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, http_status(address, &request)).await {
        Err(_) => Err(format!(
            "no status line from {address} within {} ms",
            timeout.as_millis()
        )),
        Ok(Err(e)) => Err(e),
        Ok(Ok(status)) if status == expect => Ok(()),
        Ok(Ok(status)) => Err(format!("{address} answered {status}, not {expect}")),
    }
}

/// Sends `request` and reads the status code of the answer; the rest is not read.
pub(super) async fn http_status(address: SocketAddr, request: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    let _ = stream.set_zero_linger();
    let _ = stream.set_nodelay(true);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending to {address}: {e}"))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(line) = status_line(&buf) {
            return parse_status_line(line);
        }
        if buf.len() >= MAX_STATUS_LINE {
            return Err(format!(
                "no status line in the first {MAX_STATUS_LINE} bytes"
            ));
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading from {address}: {e}"))?;
        if n == 0 {
            return Err(format!(
                "{address} closed the connection before a status line"
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The first line of `buf` (without its line end), once it is complete.
pub fn status_line(buf: &[u8]) -> Option<&[u8]> {
    let end = buf.iter().position(|b| *b == b'\n')?;
    let line = &buf[..end];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`; the reason may be
/// missing).
pub fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let shown = || String::from_utf8_lossy(&line[..line.len().min(64)]).into_owned();
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .ok_or_else(|| format!("not an HTTP/1.x status line: {:?}", shown()))?;
    let rest = match rest {
        [minor, b' ', rest @ ..] if minor.is_ascii_digit() => rest,
        _ => return Err(format!("not an HTTP/1.x status line: {:?}", shown())),
    };
    let code = match rest {
        [a, b, c] | [a, b, c, b' ', ..] => [*a, *b, *c],
        _ => return Err(format!("no status code in {:?}", shown())),
    };
    if !code.iter().all(u8::is_ascii_digit) || !(b'1'..=b'5').contains(&code[0]) {
        return Err(format!("no status code in {:?}", shown()));
    }
    Ok(code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
}

/// Kills a process group when dropped while armed: a script whose probe is abandoned (the
/// tracker ends) goes with everything it started.
pub(super) struct GroupKill(Option<i32>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: kill(2) of the process group the probe created; its leader has not
            // been waited for, so the id is still that group's.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the command with stdin, stdout and stderr on /dev/null, in a process group of its
/// own, as `user`; healthy when it exits 0 within `timeout`. On timeout the whole group is
/// killed.
pub(super) async fn script_probe(
    command: PathBuf,
    args: Vec<String>,
    user: Option<ScriptUser>,
    timeout: Duration,
) -> Result<(), String> {
    use std::process::Stdio;
    let mut cmd = tokio::process::Command::new(&command);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(user) = user {
        let (uid, gid, groups) = (user.uid, user.gid, user.groups);
        // SAFETY: the closure runs in the child between fork and exec and makes only
        // async-signal-safe system calls, on memory it owns.
        unsafe {
            cmd.pre_exec(move || scripts::drop_privileges(uid, gid, &groups));
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", command.display()))?;
    let mut group = GroupKill(child.id().and_then(|p| i32::try_from(p).ok()));
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            group.0 = None;
            if status.success() {
                Ok(())
            } else {
                Err(format!("{} {status}", command.display()))
            }
        }
        Ok(Err(e)) => Err(format!("waiting for {}: {e}", command.display())),
        Err(_) => {
            group.kill();
            let _ = child.wait().await;
            Err(format!(
                "{} ran past {} ms and was killed with its process group",
                command.display(),
                timeout.as_millis()
            ))
        }
    }
}
