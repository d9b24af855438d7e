# qemu_trad_image.py - test stand-in for xenopsd 8.2's scripts/qemu_trad_image.py,
# which the 8.2 stock qemu-wrapper imports.  The wrapper calls it only for
# `-loadvm FILE` (resuming a VM saved by qemu-traditional); the e2e tests
# never resume a VM, so both functions refuse instead of guessing.


def is_trad_image(path):
    raise NotImplementedError("qemu_trad_image stand-in: -loadvm %s is not "
                              "supported by the e2e tests" % path)


def convert_file(*args):
    raise NotImplementedError("qemu_trad_image stand-in: no conversion")
