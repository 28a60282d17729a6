//! The clock the kernel programs use (`bpf_ktime_get_ns()`, CLOCK_MONOTONIC) and the one
//! conversion between it and [`Instant`], which is CLOCK_MONOTONIC on Linux as well.
use std::time::{Duration, Instant};

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// CLOCK_MONOTONIC nanoseconds of `t`.
pub fn ns_of(t: Instant) -> u64 {
    let (now, now_ns) = (Instant::now(), monotonic_ns());
    if t >= now {
        now_ns + (t - now).as_nanos() as u64
    } else {
        now_ns.saturating_sub((now - t).as_nanos() as u64)
    }
}

/// The [`Instant`] of CLOCK_MONOTONIC nanoseconds `ns` in the past (a kernel timestamp);
/// one in the future is taken as now.
pub fn instant_of(ns: u64) -> Instant {
    let now = Instant::now();
    let age = monotonic_ns().saturating_sub(ns);
    now.checked_sub(Duration::from_nanos(age)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip_within_a_millisecond() {
        let t = Instant::now() - Duration::from_millis(250);
        let back = instant_of(ns_of(t));
        let diff = if back > t { back - t } else { t - back };
        assert!(diff < Duration::from_millis(1), "{diff:?}");
        let later = Instant::now() + Duration::from_secs(3);
        assert!(ns_of(later) > monotonic_ns() + 2_900_000_000);
    }
}
