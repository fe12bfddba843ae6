//! `BPF_PROG_TEST_RUN` for XDP programs, which aya 0.14 does not wrap.
//!
//! Runs a loaded program on a frame in the kernel and returns the action and
//! the frame as the program left it. Used by the packet tests and the
//! benchmarks.

use std::os::fd::{AsFd, AsRawFd};

/// `BPF_PROG_TEST_RUN` (enum bpf_cmd in include/uapi/linux/bpf.h).
const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// `BPF_F_TEST_XDP_LIVE_FRAMES`: frames really go out (since Linux 5.18).
pub const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// Room past the input frame for what the program may push.
const OUT_HEADROOM: usize = 512;

/// The `test` member of `union bpf_attr`, as of Linux 6.x.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
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

/// `struct xdp_md` as the test run takes it for context.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpMd {
    /// Must be 0 on input.
    pub data: u32,
    /// Must be the frame length on input.
    pub data_end: u32,
    /// Must be 0 on input.
    pub data_meta: u32,
    /// Interface the frame "arrived" on; must exist in the caller's netns.
    pub ingress_ifindex: u32,
    /// Receive queue; 0 unless the device has more.
    pub rx_queue_index: u32,
    /// Must be 0 on input.
    pub egress_ifindex: u32,
}

/// What one test run returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRunOutput {
    /// The XDP action (`XDP_PASS` = 2, `XDP_TX` = 3, `XDP_DROP` = 1, ...).
    pub action: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
    /// Mean time per run as the kernel measured it, in ns.
    pub duration_ns: u32,
}

/// Options of a test run beyond the frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestRunOptions {
    /// Runs of the program on the same buffer (0 and 1 both mean one).
    pub repeat: u32,
    /// Interface to present as the ingress one (0: the loopback of the
    /// caller's netns, as the kernel picks).
    pub ingress_ifindex: u32,
    /// `BPF_F_TEST_*` flags.
    pub flags: u32,
    /// Frames per batch for live-frame mode (0: kernel default).
    pub batch_size: u32,
}

/// Errors of [`test_run`].
#[derive(Debug, thiserror::Error)]
pub enum TestRunError {
    /// The `bpf(2)` call failed.
    #[error("bpf(BPF_PROG_TEST_RUN) failed")]
    Syscall(#[source] std::io::Error),
    /// The program file descriptor could not be had.
    #[error("program has no file descriptor")]
    NoFd(#[source] aya::programs::ProgramError),
}

/// Runs the XDP program `prog` once (or `opts.repeat` times) on `frame`.
///
/// # Errors
///
/// Fails when the kernel refuses the run (`EINVAL` for a too-short frame,
/// `EPERM` without `CAP_BPF`/root, ...).
pub fn test_run(
    prog: &aya::programs::Xdp,
    frame: &[u8],
    opts: TestRunOptions,
) -> Result<TestRunOutput, TestRunError> {
    let fd = prog.fd().map_err(TestRunError::NoFd)?;
    test_run_fd(fd.as_fd().as_raw_fd() as u32, frame, opts)
}

/// [`test_run`] for a raw program file descriptor.
///
/// # Errors
///
/// As [`test_run`].
pub fn test_run_fd(
    prog_fd: u32,
    frame: &[u8],
    opts: TestRunOptions,
) -> Result<TestRunOutput, TestRunError> {
    let mut out = vec![0u8; frame.len() + OUT_HEADROOM];
    let ctx = XdpMd {
        data_end: frame.len() as u32,
        ingress_ifindex: opts.ingress_ifindex,
        ..XdpMd::default()
    };
    let live = opts.flags & BPF_F_TEST_XDP_LIVE_FRAMES != 0;
    let mut attr = TestRunAttr {
        prog_fd,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat: opts.repeat,
        flags: opts.flags,
        batch_size: opts.batch_size,
        ..TestRunAttr::default()
    };
    if !live {
        attr.data_size_out = out.len() as u32;
        attr.data_out = out.as_mut_ptr() as u64;
    }
    if opts.ingress_ifindex != 0 {
        attr.ctx_size_in = size_of::<XdpMd>() as u32;
        attr.ctx_in = &ctx as *const XdpMd as u64;
    }

    // SAFETY: `attr` is a valid `bpf_attr.test` whose pointers (frame, out,
    // ctx) outlive the call and whose sizes match their buffers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            size_of::<TestRunAttr>(),
        )
    };
    if rc < 0 {
        return Err(TestRunError::Syscall(std::io::Error::last_os_error()));
    }

    out.truncate(if live { 0 } else { attr.data_size_out as usize });
    Ok(TestRunOutput {
        action: attr.retval,
        frame: out,
        duration_ns: attr.duration,
    })
}
