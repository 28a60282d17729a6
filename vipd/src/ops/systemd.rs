//! systemd's service protocol (`Type=notify`): readiness, stopping, watchdog pings.
use std::time::Duration;

pub fn notify(state: sd_notify::NotifyState) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let addr = match path.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(&path),
    };
    let ping = matches!(state, sd_notify::NotifyState::Watchdog);
    let sent = UnixDatagram::unbound().and_then(|sock| {
        if ping {
            sock.set_nonblocking(true)?;
        } else {
            sock.set_write_timeout(Some(Duration::from_millis(50)))?;
        }
        sock.send_to_addr(format!("{state}\n").as_bytes(), &addr?)
    });
    if let Err(e) = sent {
        tracing::debug!(error = %e, %state, "systemd notification not sent");
    }
}

/// Half the watchdog period systemd asks for (`WATCHDOG_USEC`), if it asks.
pub fn watchdog_interval() -> Option<tokio::time::Interval> {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let mut every = tokio::time::interval(Duration::from_micros(usec / 2));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Some(every)
}
