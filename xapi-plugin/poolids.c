/*
 * poolids.c - VM-IDs unique in the pool of hosts, claimed in xapi.
 *
 * A VM-ID is the mediator's name for a VM (vgpu/names.h).  Two VMs that
 * meet on one host, which any migration can bring about, must not share
 * one, so the claims live where every host of the pool sees them: the pool
 * object's other-config, one key per claim,
 *
 *     vgpu-vm-id-<id>.<gen> = <VM uuid>
 *
 * xapi adds a map key atomically and refuses a key that exists
 * (MAP_DUPLICATE_KEY), so adding a key is a compare-and-set among all the
 * hosts.  The holder of <id> is the uuid under its highest <gen>; no key is
 * ever rewritten.  A claim whose VM is gone from xapi is stale and is taken
 * over by adding the next generation, which again only one host can do.
 * Whoever takes an ID over drops its lower generations; the highest key of
 * an ID is removed by its own VM only (when the VM moves to another ID), so
 * what any host reads can never make an older claim look current.
 *
 * Owns: reading the claims, choosing an ID, claiming it, dropping the
 * claims a VM no longer needs.  Takes the XenAPI client and failure
 * reporting from the context (ctx.c); the VM's other-config is assign.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"

#define KEY_PREFIX VGPU_POOL_OC_VM_ID_PREFIX

/* A claim attempt lost to another host is re-read and retried this often. */
#define CLAIM_ATTEMPTS 32
/* The most holders whose existence one claim asks xapi about. */
#define MAX_EXISTENCE_CHECKS 256

/* The current claim of one VM-ID: its highest generation. */
struct claim {
    unsigned int id;
    unsigned long gen;
    const char *holder; /* the key's value, in the map */
    int holder_ok;      /* holder is a well-formed uuid */
    int exists;         /* -1 not asked yet, 0 gone from xapi, 1 exists */
};

struct claims {
    struct claim *v;
    size_t n;
};

/* Parses "vgpu-vm-id-<id>.<gen>", decimal without leading zeros. */
static int parse_key(const char *key, unsigned int *id, unsigned long *gen)
{
    const char *p = key + strlen(KEY_PREFIX);
    unsigned long long v;
    char *end;

    if (strncmp(key, KEY_PREFIX, strlen(KEY_PREFIX)) || *p < '1' || *p > '9')
        return -1;
    errno = 0;
    v = strtoull(p, &end, 10);
    if (errno || *end != '.' || v > VGPU_VM_ID_MAX)
        return -1;
    *id = (unsigned int)v;
    p = end + 1;
    if (*p < '1' || *p > '9')
        return -1;
    v = strtoull(p, &end, 10);
    if (errno || *end || v > VGPU_POOL_CLAIM_GEN_MAX)
        return -1;
    *gen = (unsigned long)v;
    return 0;
}

static int by_id(const void *a, const void *b)
{
    const struct claim *x = a, *y = b;

    return x->id < y->id ? -1 : x->id > y->id;
}

/* The current claim of every VM-ID in the map, sorted by id. */
static int read_claims(struct vgpu_ctx *c, const struct xr_value *map,
                       struct claims *out)
{
    struct claim *v = calloc(map->n ? map->n : 1, sizeof(*v));
    size_t n = 0;

    if (!v)
        return vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory");
    for (size_t i = 0; i < map->n; i++) {
        unsigned long gen;
        unsigned int id;
        size_t j;

        if (parse_key(map->keys[i], &id, &gen) < 0)
            continue; /* not ours, or not a claim: left alone */
        for (j = 0; j < n && v[j].id != id; j++)
            ;
        if (j < n && v[j].gen >= gen)
            continue;
        v[j].id = id;
        v[j].gen = gen;
        v[j].holder = map->items[i]->str;
        v[j].holder_ok = vgpu_uuid_ok(v[j].holder);
        v[j].exists = -1;
        if (j == n)
            n++;
    }
    qsort(v, n, sizeof(*v), by_id);
    out->v = v;
    out->n = n;
    return 0;
}

static struct claim *find(const struct claims *cl, unsigned int id)
{
    for (size_t i = 0; i < cl->n; i++)
        if (cl->v[i].id == id)
            return &cl->v[i];
    return NULL;
}

static int held_by(const struct claim *k, const char *uuid)
{
    return k && k->holder_ok && !strcasecmp(k->holder, uuid);
}

/*
 * Whether the VM holding k still exists in xapi: 1 yes, 0 gone, -1 xapi
 * failed.  A holder that is no uuid was written by hand and counts as
 * existing: only claims this code can prove stale are taken over.
 */
static int holder_exists(struct vgpu_ctx *c, struct claim *k, int *budget)
{
    char *ref = NULL;

    if (k->exists >= 0)
        return k->exists;
    if (!k->holder_ok)
        return k->exists = 1;
    if (*budget <= 0)
        return 1; /* not asked: treated as held */
    (*budget)--;
    if (xenapi_get_by_uuid(c->api, "VM", k->holder, &ref) == 0) {
        free(ref);
        return k->exists = 1;
    }
    if (!strcmp(c->api->err_code, "UUID_INVALID"))
        return k->exists = 0;
    return vgpu_fail_xapi(c, "cannot tell whether a VM-ID's holder exists");
}

/* The generation a claim of id adds now (0: id is held by a live VM). */
static int next_gen(struct vgpu_ctx *c, const struct claims *cl,
                    unsigned int id, int *budget, unsigned long *gen)
{
    struct claim *k = find(cl, id);
    int e;

    *gen = 0;
    if (!k) {
        *gen = 1;
        return 0;
    }
    e = holder_exists(c, k, budget);
    if (e < 0)
        return -1;
    if (e == 0 && k->gen < VGPU_POOL_CLAIM_GEN_MAX)
        *gen = k->gen + 1;
    return 0;
}

/*
 * The ID to claim when the VM holds none it may keep: the lowest one that
 * nobody claimed or whose holder is gone, as far as the existence budget
 * reaches; past it, the lowest never claimed.
 */
static int pick_free(struct vgpu_ctx *c, const struct claims *cl, int *budget,
                     unsigned int *id, unsigned long *gen)
{
    unsigned int gap = 1;

    for (size_t i = 0; i < cl->n && cl->v[i].id == gap; i++)
        gap++;
    for (size_t i = 0; i < cl->n && cl->v[i].id<gap && * budget> 0; i++) {
        if (next_gen(c, cl, cl->v[i].id, budget, gen) < 0)
            return -1;
        if (*gen) {
            *id = cl->v[i].id;
            return 0;
        }
    }
    if (gap == 0 || gap > VGPU_VM_ID_MAX)
        return vgpu_fail(c, VGPU_FAULT_STATE,
                         "no free VM-ID left in the pool (%zu claimed)", cl->n);
    *id = gap;
    *gen = 1;
    return 0;
}

static void key_of(char *buf, size_t len, unsigned int id, unsigned long gen)
{
    snprintf(buf, len, KEY_PREFIX "%u.%lu", id, gen);
}

/*
 * After uuid got id: drops id's lower generations, and the current claims
 * of uuid on other IDs.  Best effort: a key left behind is harmless (it is
 * lower, or it names a VM that keeps another ID) and is dropped next time.
 */
static void tidy(struct vgpu_ctx *c, const char *pool,
                 const struct xr_value *map, const char *uuid, unsigned int id,
                 unsigned long gen)
{
    for (size_t i = 0; i < map->n; i++) {
        unsigned long g;
        unsigned int k;

        if (parse_key(map->keys[i], &k, &g) < 0)
            continue;
        if ((k == id && g < gen) ||
            (k != id && !strcasecmp(map->items[i]->str, uuid)))
            xenapi_remove_from_other_config(c->api, "pool", pool, map->keys[i]);
    }
}

/*
 * One round: read the claims, choose, add.  1 claimed (*vm_id set), 0 lost
 * the race (read again), -1 failed.
 */
static int claim_once(struct vgpu_ctx *c, const char *pool, const char *uuid,
                      unsigned int wanted, int *budget, unsigned int *vm_id)
{
    struct xr_value *map = NULL;
    struct claims cl = {0};
    unsigned long gen = 0;
    unsigned int id = 0;
    char key[64];
    int rc = -1;

    if (xenapi_get_other_config(c->api, "pool", pool, &map))
        return vgpu_fail_xapi(c, "cannot read the pool's VM-ID claims");
    if (read_claims(c, map, &cl) < 0)
        goto out;
    if (wanted && held_by(find(&cl, wanted), uuid)) {
        id = wanted; /* already ours: nothing to add */
    } else if (wanted && next_gen(c, &cl, wanted, budget, &gen) < 0) {
        goto out;
    } else if (wanted && gen) {
        id = wanted;
    } else {
        for (size_t i = 0; i < cl.n && !id; i++)
            if (held_by(&cl.v[i], uuid))
                id = cl.v[i].id;
        if (!id && pick_free(c, &cl, budget, &id, &gen) < 0)
            goto out;
    }
    if (gen) {
        key_of(key, sizeof(key), id, gen);
        if (xenapi_add_to_other_config(c->api, "pool", pool, key, uuid)) {
            if (!strcmp(c->api->err_code, "MAP_DUPLICATE_KEY"))
                rc = 0; /* another host was first: read again */
            else
                vgpu_fail_xapi(c, "cannot claim a VM-ID in the pool");
            goto out;
        }
    } else {
        gen = find(&cl, id)->gen;
    }
    tidy(c, pool, map, uuid, id, gen);
    *vm_id = id;
    rc = 1;
out:
    free(cl.v);
    xr_value_free(map);
    return rc;
}

int vgpu_poolid_claim(struct vgpu_ctx *c, const char *uuid, unsigned int wanted,
                      unsigned int *vm_id)
{
    int budget = MAX_EXISTENCE_CHECKS;
    char *pool = NULL;
    int rc = 0;

    if (xenapi_pool_ref(c->api, &pool))
        return vgpu_fail_xapi(c, "cannot find the pool object");
    for (int i = 0; i < CLAIM_ATTEMPTS && rc == 0; i++)
        rc = claim_once(c, pool, uuid, wanted, &budget, vm_id);
    free(pool);
    if (rc == 0)
        return vgpu_fail(c, VGPU_FAULT_XAPI,
                         "no VM-ID claimed in %d tries: other hosts kept "
                         "claiming the same IDs",
                         CLAIM_ATTEMPTS);
    return rc < 0 ? -1 : 0;
}
