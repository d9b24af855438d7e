# mk/common.mk - compiler settings shared by every part built on the host.
#
# Each part's Makefile includes this file and puts its outputs under $(O),
# a folder the top-level Makefile chooses (default: build/<part> in the
# checkout).  SAN=1 adds AddressSanitizer and UndefinedBehaviorSanitizer;
# `make check` builds host code that way.

TOP ?= $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
CC ?= cc
SAN ?= 0

CFLAGS_COMMON := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	-D_GNU_SOURCE -I$(TOP)/include
ifeq ($(SAN),1)
CFLAGS_COMMON += -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
LDFLAGS_COMMON += -fsanitize=address,undefined
endif

CFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS = $(CFLAGS_COMMON) $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS_COMMON) $(LDFLAGS)
