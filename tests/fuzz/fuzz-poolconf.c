/*
 * fuzz-poolconf.c - libFuzzer target for pools.conf (mediator/poolconf.c,
 * which the xapi plugin shares): a file an administrator writes, read by
 * root daemons; a mistake in it must be a message, never a crash.
 *
 * Checked: a file accepted holds at most POOLCONF_MAX_POOLS pools, each a
 * valid pool name (vgpu/names.h's one rule), found again by name, with at
 * most POOLCONF_MAX_GPUS GPUs each; a refusal has a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "poolconf.h"
#include "vgpu_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct poolconf pc;
    char err[256] = "";
    char *text = malloc(size + 1);

    if (!text) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    if (poolconf_parse(text, &pc, err, sizeof(err)) == 0) {
        if (pc.npools > POOLCONF_MAX_POOLS) {
            abort();
        }
        for (unsigned i = 0; i < pc.npools; i++) {
            if (!vgpu_pool_name_valid(pc.pools[i].name) ||
                poolconf_find(&pc, pc.pools[i].name) != &pc.pools[i] ||
                pc.pools[i].ngpus > POOLCONF_MAX_GPUS) {
                abort();
            }
        }
    } else if (!err[0]) {
        abort();
    }
    free(text);
    return 0;
}
