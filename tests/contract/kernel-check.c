/*
 * kernel-check.c - what a Linux kernel module of the guest (v2's
 * /dev/vgpuN driver) includes of the contract, compiled as a module would
 * compile it: -D__KERNEL__, no libc, no floating point.  Built, never run,
 * by test-kernel-headers.sh; a contract header that needs libc or an FPU
 * fails this build.
 */
#include "uapi/vgpu.h"
#include "vgpu_protocol.h"

#define CHECK_LAYOUT(what, cond) _Static_assert(cond, what)

CHECK_LAYOUT("uapi pool name is the contract's",
             VGPU_UAPI_POOL_NAME_LEN == VGPU_POOL_NAME_MAX);
CHECK_LAYOUT("INFO struct size", sizeof(struct vgpu_ioctl_info) == 48);
CHECK_LAYOUT("INFO struct: pool after the four words",
             __builtin_offsetof(struct vgpu_ioctl_info, pool) == 16);
CHECK_LAYOUT("INFO struct: reserved 8-byte aligned",
             __builtin_offsetof(struct vgpu_ioctl_info, reserved) == 32);
CHECK_LAYOUT("INFO ioctl encodes the struct's size",
             ((VGPU_IOCTL_INFO >> 16) & 0x3fff) ==
                 sizeof(struct vgpu_ioctl_info));
CHECK_LAYOUT("SUBMIT struct size", sizeof(struct vgpu_ioctl_submit) == 48);
CHECK_LAYOUT("completion struct size",
             sizeof(struct vgpu_ioctl_completion) == 24);
CHECK_LAYOUT("WAIT struct size", sizeof(struct vgpu_ioctl_wait) == 32);
CHECK_LAYOUT("DRIVER_INFO struct size",
             sizeof(struct vgpu_ioctl_driver_info) == 40);
CHECK_LAYOUT("SUBMIT ioctl encodes the struct's size",
             ((VGPU_IOCTL_SUBMIT >> 16) & 0x3fff) ==
                 sizeof(struct vgpu_ioctl_submit));
CHECK_LAYOUT("WAIT ioctl encodes the struct's size",
             ((VGPU_IOCTL_WAIT >> 16) & 0x3fff) ==
                 sizeof(struct vgpu_ioctl_wait));
CHECK_LAYOUT("v2 ioctl numbers follow INFO",
             (VGPU_IOCTL_SUBMIT & 0xff) == 1 && (VGPU_IOCTL_WAIT & 0xff) == 2 &&
                 (VGPU_IOCTL_DRIVER_INFO & 0xff) == 3);
CHECK_LAYOUT("hello: pool first",
             __builtin_offsetof(struct vgpu_msg_hello, pool) ==
                 VGPU_HELLO_OFF_POOL);
CHECK_LAYOUT("hello: priority",
             __builtin_offsetof(struct vgpu_msg_hello, priority) ==
                 VGPU_HELLO_OFF_PRIORITY);
CHECK_LAYOUT("hello: vm_id", __builtin_offsetof(struct vgpu_msg_hello, vm_id) ==
                                 VGPU_HELLO_OFF_VM_ID);
CHECK_LAYOUT("hello: caps", __builtin_offsetof(struct vgpu_msg_hello, caps) ==
                                VGPU_HELLO_OFF_CAPS);
CHECK_LAYOUT("header: length",
             __builtin_offsetof(struct vgpu_msg_hdr, length) ==
                 VGPU_MSG_OFF_LENGTH);

/* What a driver would do with the contract: fill INFO from the registers
 * (the inline helpers are compiled too, not only declared). */
int vgpu_kcheck_info(const vgpu_u32 *bar, struct vgpu_ioctl_info *info);
int vgpu_kcheck_info(const vgpu_u32 *bar, struct vgpu_ioctl_info *info)
{
    vgpu_u32 w[VGPU_POOL_NAME_REGS];
    char name[VGPU_POOL_NAME_SIZE];
    unsigned int i;
    int state;

    for (i = 0; i < VGPU_POOL_NAME_REGS; i++) {
        w[i] = bar[vgpu_pool_name_reg(i) / VGPU_REG_WIDTH];
    }
    state = vgpu_pool_name_from_regs(w, name);
    vgpu_pool_name_pack(info->pool, state > 0 ? name : "");
    info->protocol_version = bar[VGPU_REG_PROTOCOL_VER / VGPU_REG_WIDTH];
    info->caps = bar[VGPU_REG_CAPABILITIES / VGPU_REG_WIDTH];
    info->priority = bar[VGPU_REG_PRIORITY / VGPU_REG_WIDTH];
    info->vm_id = bar[VGPU_REG_VM_ID / VGPU_REG_WIDTH];
    info->reserved[0] = info->reserved[1] = 0;
    if (vgpu_priority_parse(vgpu_priority_name(info->priority), &w[0])) {
        return -1;
    }
    return VGPU_VERSION_MAJOR(info->protocol_version) == VGPU_PROTOCOL_MAJOR
               ? state
               : -1;
}

/* And the rest of the inline code, so that all of it is compiled here. */
long vgpu_kcheck_rest(vgpu_u8 *buf);
long vgpu_kcheck_rest(vgpu_u8 *buf)
{
    struct vgpu_msg_hdr h =
        vgpu_msg_hdr_make(VGPU_MSG_HELLO, 0, 1, 0, VGPU_MSG_HELLO_SIZE);
    struct vgpu_msg_hello hello = vgpu_msg_hello_make("A", 0, 1, 0);
    char name[VGPU_POOL_NAME_SIZE];

    vgpu_msg_hdr_pack(buf, &h);
    vgpu_msg_hdr_unpack(buf, &h);
    vgpu_msg_hello_pack(buf + VGPU_MSG_HDR_SIZE, &hello);
    vgpu_msg_hello_unpack(buf + VGPU_MSG_HDR_SIZE, &hello);
    return (long)vgpu_sgemm_checksum_ref(1, 4) + vgpu_sgemm_a(1, 2, 3) +
           vgpu_sgemm_b(1, 2, 3) + (vgpu_msg_hdr_check(&h) != 0) +
           vgpu_pool_name_unpack(hello.pool, name) +
           vgpu_error_name(VGPU_ERR_NO_GPU)[0] +
           vgpu_status_name(VGPU_STATUS_DONE)[0] + VGPU_SAXPY_REQ_LEN(2) +
           VGPU_VECTOR_ADD_RESP_LEN(1) + VGPU_SGEMM_RESP_LEN;
}
