//! Setting up the io_uring: the newest flags the kernel accepts, and a check that every
//! operation the driver uses exists, so an old kernel fails at once with a clear error rather
//! than midway through a run.

use io_uring::{IoUring, Probe, opcode};
use rustix::io::Errno;

use super::RingConfig;
use crate::handoff::HandoffError;

pub(super) fn build_uring(config: &RingConfig) -> Result<IoUring, HandoffError> {
    let cq = config.cq_entries.max(config.sq_entries.saturating_mul(2));
    // Newest set-up first: deferred task work runs completions only when we ask for them,
    // in batches, on this thread. Older kernels reject the flags with EINVAL.
    let attempts: [fn(&mut io_uring::Builder) -> &mut io_uring::Builder; 3] = [
        |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag()
        },
        |b| b.setup_coop_taskrun().setup_taskrun_flag(),
        |b| b,
    ];
    let mut last = Errno::INVAL;
    for configure in attempts {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(cq).setup_clamp().setup_submit_all();
        configure(&mut builder);
        match builder.build(config.sq_entries) {
            Ok(ring) => return Ok(ring),
            Err(e) => {
                last = Errno::from_io_error(&e).unwrap_or(Errno::INVAL);
                if last != Errno::INVAL {
                    break;
                }
            }
        }
    }
    Err(HandoffError::RingUnavailable { errno: last })
}

pub(super) fn check_support(uring: &IoUring) -> Result<(), HandoffError> {
    let mut probe = Probe::new();
    uring
        .submitter()
        .register_probe(&mut probe)
        .map_err(|_| HandoffError::RingUnsupported {
            feature: "opcode probing (IORING_REGISTER_PROBE)",
        })?;
    let needed = [
        (opcode::Connect::CODE, "IORING_OP_CONNECT"),
        (opcode::SendMsg::CODE, "IORING_OP_SENDMSG"),
        (opcode::Send::CODE, "IORING_OP_SEND"),
        (opcode::Recv::CODE, "IORING_OP_RECV"),
        (opcode::Timeout::CODE, "IORING_OP_TIMEOUT"),
        (opcode::LinkTimeout::CODE, "IORING_OP_LINK_TIMEOUT"),
        (opcode::TimeoutRemove::CODE, "IORING_OP_TIMEOUT_REMOVE"),
        (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
        (opcode::Shutdown::CODE, "IORING_OP_SHUTDOWN"),
        (opcode::Read::CODE, "IORING_OP_READ"),
        (opcode::PollAdd::CODE, "IORING_OP_POLL_ADD"),
    ];
    for (code, feature) in needed {
        if !probe.is_supported(code) {
            return Err(HandoffError::RingUnsupported { feature });
        }
    }
    let params = uring.params();
    if !params.is_feature_nodrop() {
        return Err(HandoffError::RingUnsupported {
            feature: "IORING_FEAT_NODROP",
        });
    }
    if !params.is_feature_ext_arg() {
        return Err(HandoffError::RingUnsupported {
            feature: "IORING_FEAT_EXT_ARG",
        });
    }
    Ok(())
}
