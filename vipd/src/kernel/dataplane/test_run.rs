//! BPF_PROG_TEST_RUN: the XDP program run on a frame the tests build.
use super::*;

/// The kernel's `struct xdp_md`, as BPF_PROG_TEST_RUN takes it for the context.
#[repr(C)]
#[derive(Default)]
pub(super) struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

/// The BPF_PROG_TEST_RUN member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
pub(super) struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

pub(super) const BPF_PROG_TEST_RUN: libc::c_long = 10;

pub(super) fn test_run(
    prog_fd: i32,
    frame: &[u8],
    ifindex: u32,
    repeat: u32,
) -> Result<(u32, u32)> {
    let mut out = vec![0u8; frame.len() + 256];
    let ctx = XdpMd {
        data_end: frame.len() as u32,
        ingress_ifindex: ifindex,
        ..Default::default()
    };
    let mut attr = TestRunAttr {
        prog_fd: prog_fd as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ctx_size_in: std::mem::size_of::<XdpMd>() as u32,
        ctx_in: &ctx as *const XdpMd as u64,
        ..Default::default()
    };
    // SAFETY: attr points to a valid bpf_attr prefix whose pointers outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    if rc < 0 {
        return Err(DataplaneError::TestRun(std::io::Error::last_os_error()));
    }
    Ok((attr.retval, attr.duration))
}
