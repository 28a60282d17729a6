//! Interface trackers: rtnetlink link notifications, never polled.
use super::*;

/// One interface tracker: what it reports to, and what it knows of its interface.
pub(super) struct Iface {
    pub(super) out: Out,
    pub(super) hysteresis: Hysteresis,
    pub(super) ifname: String,
    /// The interface's index while it exists.
    pub(super) index: Option<u32>,
}

impl Iface {
    /// Asks the kernel for the interface by name: its index and whether it runs.
    async fn refresh(&mut self, netlink: &Netlink) {
        let result = match netlink.link(&self.ifname).await {
            Ok(info) => {
                self.index = Some(info.index);
                if info.running {
                    Ok(())
                } else {
                    Err(format!("{} is not up and running", self.ifname))
                }
            }
            Err(AddrError::NoInterface(_)) => {
                self.index = None;
                Err(format!("no interface {}", self.ifname))
            }
            Err(e) => {
                tracing::warn!(tracker = %self.out.name, error = %e, "cannot read the interface");
                return;
            }
        };
        self.out.observe(&mut self.hysteresis, &result).await;
    }
}

/// One task for every interface tracker: a notification about a tracked interface (or
/// about any interface while a tracked one is missing: it may have been created or
/// renamed) makes the tracker read its interface again by name.
pub(super) async fn run_interfaces(mut list: Vec<Iface>, mut watch: LinkWatch, netlink: Netlink) {
    for i in &mut list {
        i.refresh(&netlink).await;
    }
    while let Some(event) = watch.next().await {
        let index = match event {
            LinkEvent::Changed { index, .. } | LinkEvent::Removed { index } => index,
        };
        for i in &mut list {
            if i.index.is_none_or(|mine| mine == index) {
                i.refresh(&netlink).await;
            }
        }
    }
    tracing::error!("link notifications stopped: interface trackers report down");
    for i in &mut list {
        if i.hysteresis.state() != Some(false) {
            i.out.health(false).await;
        }
    }
}
