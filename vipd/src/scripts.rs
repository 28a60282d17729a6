//! Up and down scripts, run as ucarp runs them (`<script> <interface> <vip> <xparam>`, once
//! per VIP), one at a time in transition order, each under a timeout, on a task of their own
//! so that a slow script never delays an advertisement or a timer.
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

/// One script run.
#[derive(Debug, Clone)]
pub struct ScriptRun {
    pub vhid: u8,
    pub script: PathBuf,
    pub args: Vec<String>,
    pub timeout: Duration,
}

/// Queue of script runs, executed in order.
pub struct ScriptRunner {
    tx: mpsc::UnboundedSender<ScriptRun>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptRunner {
    /// Starts the runner task on the current runtime.
    pub fn start() -> ScriptRunner {
        let (tx, mut rx) = mpsc::unbounded_channel::<ScriptRun>();
        let task = tokio::spawn(async move {
            while let Some(run) = rx.recv().await {
                execute(run).await;
            }
        });
        ScriptRunner { tx, task }
    }

    /// Stops taking runs; the returned task ends once the queued ones have run.
    pub fn close(self) -> tokio::task::JoinHandle<()> {
        self.task
    }

    pub fn queue(&self, run: ScriptRun) {
        if self.tx.send(run).is_err() {
            tracing::error!("script runner has stopped; a script was not run");
        }
    }
}

async fn execute(run: ScriptRun) {
    let started = std::time::Instant::now();
    let mut cmd = tokio::process::Command::new(&run.script);
    cmd.args(&run.args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(vhid = run.vhid, script = %run.script.display(), error = %e, "cannot run script");
            return;
        }
    };
    match tokio::time::timeout(run.timeout, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => {
            tracing::info!(vhid = run.vhid, script = %run.script.display(), args = ?run.args,
                ms = started.elapsed().as_millis() as u64, "script done");
        }
        Ok(Ok(out)) => {
            tracing::warn!(vhid = run.vhid, script = %run.script.display(), args = ?run.args,
                status = %out.status, "script failed");
        }
        Ok(Err(e)) => {
            tracing::error!(vhid = run.vhid, script = %run.script.display(), error = %e, "script wait failed");
        }
        Err(_) => {
            tracing::error!(vhid = run.vhid, script = %run.script.display(),
                timeout_ms = run.timeout.as_millis() as u64, "script timed out and was killed");
        }
    }
}
