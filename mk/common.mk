# mk/common.mk - compiler settings shared by every part built on the host.
#
# Each part's Makefile includes this file and puts its outputs under $(O),
# a folder the top-level Makefile chooses (default: build/<part> in the
# checkout).  SAN=1 adds AddressSanitizer and UndefinedBehaviorSanitizer;
# `make check` builds host code that way.

# Simply expanded, once: a file a part's Makefile includes later must not
# change what TOP means.
ifndef TOP
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
endif
CC ?= cc
SAN ?= 0

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

CFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS = $(CFLAGS_COMMON) $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS_COMMON) $(LDFLAGS)
