/*
 * vgpu_protocol.h - THE contract of vgpu, as one include.
 *
 * Every value or rule that crosses a boundary between the parts of vgpu
 * lives under include/ and nowhere else.  This umbrella owns no value of
 * its own: it includes the contract's headers, split by concern,
 *
 *   vgpu/types.h  integer types and little-endian byte access (kernel-safe)
 *   vgpu/regs.h   PCI identity and slot, BAR0 register map, STATUS,
 *                 ERROR_CODE, protocol version, capability bits, timeouts
 *   vgpu/ops.h    opcodes and request/response payloads, SGEMM helpers
 *   vgpu/msg.h    device <-> mediator socket: header, HELLO, types, rules,
 *                 pack/unpack/check helpers
 *   vgpu/names.h  pool names and their one validity rule, priority names
 *                 and parsing, VM-ID and domid limits, host paths,
 *                 xenstore keys, STATUS/ERROR_CODE names
 *   vgpu/ring.h   protocol v2 as the guest sees it: ring registers, SQ/CQ
 *                 entries, SG lists, doorbell buffer, MSI-X, coalescing
 *   vgpu/shm.h    the v2 channel device <-> mediator: SHM_REQ/SHM_OFFER,
 *                 the shared staging region, its rings, chunks, polling
 *   vgpu/rpc.h    protocol v3: batches of CUDA driver calls remoted from the
 *                 guest's libcuda.so.1, handles, statuses
 *
 * and the ioctl ABI of the guest's future /dev/vgpuN is include/uapi/vgpu.h.
 *
 * Included by the QEMU device (4.2 and 7.2, which get a copy under
 * include/hw/misc/: the includes below are relative to this file), the
 * mediator, the xapi plugin, the guest tools and the tests.  Plain C99 over
 * <stdint.h> (<linux/types.h> under __KERNEL__) and nothing else.
 *
 * All multi-byte fields, in registers, payloads and socket messages, are
 * little-endian.
 */
#ifndef VGPU_PROTOCOL_H
#define VGPU_PROTOCOL_H

#include "vgpu/types.h"
#include "vgpu/regs.h"
#include "vgpu/ops.h"
#include "vgpu/names.h"
#include "vgpu/msg.h"
#include "vgpu/ring.h"
#include "vgpu/shm.h"
#include "vgpu/rpc.h"

#endif /* VGPU_PROTOCOL_H */
