# mk/common.mk - compiler settings shared by every part built on the host.
#
# Each part's Makefile includes this file and puts its outputs under $(O),
# a folder the top-level Makefile chooses (default: build/<part> in the
# checkout).  SAN=1 adds AddressSanitizer and UndefinedBehaviorSanitizer;
# `make check` builds host code that way.  DOM0=1 (below) builds for
# XCP-ng's dom0 instead of the host.

# Simply expanded, once: a file a part's Makefile includes later must not
# change what TOP means.
ifndef TOP
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
endif
CC ?= cc
SAN ?= 0
# A dom0 build (DOM0=1, below) is never sanitized.
DOM0 ?= 0
ifeq ($(DOM0),1)
override SAN := 0
endif

# The release version lives in one place, the top-level VERSION file; the
# binaries report it (vgpu-mediator --version) and the RPMs carry it.
VGPU_VERSION := $(firstword $(shell cat $(TOP)/VERSION 2>/dev/null) 0.0.0)

CFLAGS_COMMON := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	-D_GNU_SOURCE -I$(TOP)/include -DVGPU_VERSION='"$(VGPU_VERSION)"'
ifeq ($(SAN),1)
CFLAGS_COMMON += -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
LDFLAGS_COMMON += -fsanitize=address,undefined
endif

# DOM0=1: the dom0 binaries for XCP-ng 8.2 and 8.3, whose dom0 is CentOS 7
# based: GCC 4.8.5 against the glibc 2.17 sysroot of the crosstool-NG
# toolchain that scripts/dom0-toolchain.sh fetches (once, into the cache;
# DOM0_TOOLCHAIN=DIR names one already there), so that no symbol version
# above GLIBC_2.17 is needed.  CFLAGS_COMMON applies unchanged: GCC 4.8.5
# takes every flag of it (-std=gnu11 since 4.7, -Wformat=2, ...).  What it
# lacks is the host compiler's default of position-independent executables
# (Debian's GCC builds PIE unasked; 4.8.5 only when told): -fPIE and -pie
# keep the dom0 binaries, root daemon included, under full ASLR.  No
# sanitizers (neither libasan nor libubsan is in the sysroot).  Nothing of
# the host's /usr/include is seen but the xenstore headers (Debian's
# libxen-dev, or DOM0_XS_HEADERS=DIR), which a folder of links to them,
# DOM0_XS_INC, exposes; only their types and prototypes are used, the
# library itself being loaded at run time (common/xs-dl.c).  The top-level
# `make dom0` builds this way into build/dom0/<part>.
ifeq ($(DOM0),1)
ifeq ($(origin DOM0_TOOLCHAIN),undefined)
DOM0_TOOLCHAIN := $(shell $(TOP)/scripts/dom0-toolchain.sh --prefix)
endif
ifeq ($(wildcard $(DOM0_TOOLCHAIN)/bin/x86_64-unknown-linux-gnu-gcc),)
$(error DOM0=1: no toolchain (scripts/dom0-toolchain.sh failed?))
endif
DOM0_SYSROOT := $(DOM0_TOOLCHAIN)/x86_64-unknown-linux-gnu/sysroot
override CC := $(DOM0_TOOLCHAIN)/bin/x86_64-unknown-linux-gnu-gcc \
	--sysroot=$(DOM0_SYSROOT)
DOM0_XS_HEADERS ?= /usr/include
DOM0_XS_INC ?= $(TOP)/build/dom0/xs-include
DOM0_XS_FILES := xenstore.h xenstore_lib.h xen/io/xs_wire.h
ifneq ($(words $(wildcard $(DOM0_XS_FILES:%=$(DOM0_XS_HEADERS)/%))),3)
$(error DOM0=1: no $(DOM0_XS_FILES) in $(DOM0_XS_HEADERS) (Debian package libxen-dev))
endif
# Made when the makefile is read: every object needs it.
DOM0_XS_MADE := $(shell set -e; for f in $(DOM0_XS_FILES); do \
	mkdir -p $(DOM0_XS_INC)/$$(dirname $$f); \
	ln -sfn $(DOM0_XS_HEADERS)/$$f $(DOM0_XS_INC)/$$f; done && echo ok)
ifneq ($(DOM0_XS_MADE),ok)
$(error DOM0=1: could not make $(DOM0_XS_INC))
endif
CFLAGS_COMMON += -I$(DOM0_XS_INC) -fPIE
LDFLAGS_COMMON += -pie
endif

CFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS = $(CFLAGS_COMMON) $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS_COMMON) $(LDFLAGS)
