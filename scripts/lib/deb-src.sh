# scripts/lib/deb-src.sh - sourced by the scripts that fetch Debian source
# packages with `apt-get source` (qemu-dm-patch/build-qemu.sh for QEMU,
# tests/integration/libxenstore-glibc217.sh for Xen's libxenstore).
#
# These machines have no deb-src entry.  One is derived from the machine's
# own Debian entry (debian.sources, Types: deb -> deb-src) rather than
# naming any archive host.  The caller defines log() and die().

have_deb_src() {
    grep -qs '^Types:.*deb-src' /etc/apt/sources.list.d/*.sources && return 0
    grep -qs '^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list
}

# Make sure apt can fetch source packages; dies with the command to run
# when that needs root.
ensure_deb_src() {
    have_deb_src && return 0
    [ "$(id -u)" = 0 ] ||
        die "apt has no deb-src entry; as root run: sed 's/^Types: deb\$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/debian-src.sources && apt-get update"
    [ -f /etc/apt/sources.list.d/debian.sources ] ||
        die "no /etc/apt/sources.list.d/debian.sources to derive a deb-src entry from"
    log "adding a deb-src entry derived from debian.sources"
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        >/etc/apt/sources.list.d/debian-src.sources
    apt-get update >&2
}
