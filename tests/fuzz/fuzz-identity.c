/*
 * fuzz-identity.c - libFuzzer target for the xenstore values the mediator
 * takes a domain's identity from (mediator/identity.c): pool, priority
 * and VM-ID.  dom0 writes them, but a toolstack bug or an operator's
 * xenstore-write can put anything there.
 *
 * The input is cut at its first two NUL bytes into the three values.
 * Checked: an accepted pool is a valid pool name (vgpu/names.h), an
 * accepted priority is one of the three, an accepted VM-ID is within
 * 1..VGPU_VM_ID_MAX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "vgpu_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3), *pool, *prio, *vm_id, *nul;
    char name[VGPU_POOL_NAME_SIZE];
    uint32_t p, id;

    if (!buf) {
        return 0;
    }
    memcpy(buf, data, size);
    memset(buf + size, 0, 3);
    pool = buf;
    nul = memchr(pool, '\0', size + 1);
    prio = nul + 1;
    vm_id = prio + strlen(prio) + 1;
    if (identity_parse_pool(pool, name) == 0 && !vgpu_pool_name_valid(name)) {
        abort();
    }
    if (identity_parse_priority(prio, &p) == 0 && p >= VGPU_PRIO_COUNT) {
        abort();
    }
    if (identity_parse_vm_id(vm_id, &id) == 0 &&
        (id < 1 || id > VGPU_VM_ID_MAX)) {
        abort();
    }
    free(buf);
    return 0;
}
