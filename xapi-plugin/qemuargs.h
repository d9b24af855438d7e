/*
 * qemuargs.h - what the qemu-dm wrapper reads in the argument list xenopsd
 * hands it: whether an option is there (-priv), and which PCI slots of bus
 * 0 the devices in it already take (-device ...,addr=S[.F]).
 *
 * xenopsd writes every addr= in hexadecimal (xc/device.ml: "addr=%x"), and
 * QEMU reads addr= as slot[.function] in hexadecimal with an optional 0x,
 * so that is what is parsed here.
 */
#ifndef VGPU_QEMUARGS_H
#define VGPU_QEMUARGS_H

/* Largest PCI slot number (device) on a bus. */
#define QEMUARGS_SLOT_MAX 0x1fu

/* 1 when argv[first..argc) holds the option `opt` as a whole word. */
int qemuargs_has(int argc, char **argv, int first, const char *opt);

/*
 * Parses "S" or "S.F" (hex, optional 0x) as QEMU reads addr=.  Returns the
 * slot 0..QEMUARGS_SLOT_MAX, or -1 when s is not a PCI address.
 */
int qemuargs_parse_addr(const char *s);

/*
 * The value of the first `-device` in argv[first..argc) whose addr= names
 * `slot`, or NULL when no device there takes it.
 */
const char *qemuargs_slot_user(int argc, char **argv, int first,
                               unsigned int slot);

#endif
