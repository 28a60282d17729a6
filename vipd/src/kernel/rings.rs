//! The two advertisement ring buffers the kernel programs fill, read by the event loop.
use anyhow::{Context, Result};
use aya::maps::{MapData, RingBuf};
use tokio::io::unix::{AsyncFd, AsyncFdReadyMutGuard};
use tracing::info;
use vipd_common::AdvertEvent;

use super::dataplane::Dataplane;

/// The two advertisement rings: known peers' first, then everyone else's.
pub struct Rings {
    peers: AsyncFd<RingBuf<MapData>>,
    others: AsyncFd<RingBuf<MapData>>,
}

impl Rings {
    /// Takes both rings, discarding what an adopted ring holds (received while no vipd
    /// listened: stale).
    pub(super) fn open(dp: &mut Dataplane) -> Result<Rings> {
        let register = |ring: Option<RingBuf<MapData>>, what: &str| -> Result<_> {
            let mut ring = ring.with_context(|| format!("{what} ring buffer"))?;
            let mut stale = 0;
            while ring.next().is_some() {
                stale += 1;
            }
            if stale > 0 {
                info!(
                    records = stale,
                    ring = what,
                    "discarded advertisements queued while no vipd ran"
                );
            }
            // SAFETY: the ring buffer owns its fd and outlives the registration (both live
            // in the AsyncFd).
            unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
                .map_err(|e| anyhow::anyhow!("polling the {what} ring buffer: {e}"))
        };
        let peers = register(dp.take_peer_adverts(), "known peers'")?;
        let others = register(dp.take_adverts(), "advertisement")?;
        Ok(Rings { peers, others })
    }

    /// Waits until a ring has records and takes a bounded batch, the known peers' first.
    pub async fn readable(&mut self) -> std::io::Result<Vec<AdvertEvent>> {
        tokio::select! {
            biased;
            guard = self.peers.readable_mut() => Ok(drain_ready(guard?)),
            guard = self.others.readable_mut() => Ok(drain_ready(guard?)),
        }
    }

    /// What both rings hold now (a bounded batch of each), the known peers' first.
    pub fn drain_now(&mut self) -> Vec<AdvertEvent> {
        let mut events = drain(self.peers.get_mut());
        events.extend(drain(self.others.get_mut()));
        events
    }
}

/// Takes what the ring buffer holds once epoll reports it readable; re-arms the wait once
/// the ring is empty.
fn drain_ready(mut guard: AsyncFdReadyMutGuard<'_, RingBuf<MapData>>) -> Vec<AdvertEvent> {
    let events = drain(guard.get_inner_mut());
    if events.len() < RING_BATCH {
        guard.clear_ready();
    }
    events
}

/// At most this many records per wake-up: the loop then serves timers and requests, and
/// comes back for the rest.
const RING_BATCH: usize = 256;

fn drain(ring: &mut RingBuf<MapData>) -> Vec<AdvertEvent> {
    let mut out = Vec::new();
    while out.len() < RING_BATCH
        && let Some(item) = ring.next()
    {
        if item.len() >= std::mem::size_of::<AdvertEvent>() {
            // SAFETY: the XDP program writes whole AdvertEvent records.
            out.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<AdvertEvent>()) });
        }
    }
    out
}
