/*
 * hookargs.c - the argument list xenopsd gives a VM hook script
 * (xenopsd lib/xenops_hooks.ml: "-vmuuid" U "-reason" R, then
 * "-vmdomid" D when a domain exists), read the same way by every hook of
 * ours (vgpu-pre-start, vgpu-pre-move).
 */
#include <string.h>

#include "core.h"

void vgpu_hook_args(int argc, char **argv, struct vgpu_hook_args *a)
{
    memset(a, 0, sizeof(*a));
    a->reason = "none";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-vmuuid") && i + 1 < argc)
            a->uuid = argv[++i];
        else if (!strcmp(argv[i], "-reason") && i + 1 < argc)
            a->reason = argv[++i];
        else if (!strcmp(argv[i], "-vmdomid") && i + 1 < argc)
            a->domid = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            a->help = 1;
        /* xenopsd may add more: not ours to judge. */
    }
}
