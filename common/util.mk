# common/util.mk - the build rule of common/util.o, the small system helpers
# of util.h (monotonic clock, epoll, peer credentials, mkdir -p) that the
# dom0 programs share.
#
# A part's Makefile includes it once O is set and adds $(UTIL_OBJ) to what
# it links (or to its library); util.h is then found as "util.h" (this adds
# -I of common/ to the part's flags), and $(UTIL_H) is the prerequisite for
# the objects that include it.  Like xs-dl.o, the object is built into the
# part's own $(O) with the part's compiler and flags.

UTIL_DIR := $(TOP)/common
# qemudm.o: the qemu-dm check of the wrapper, the plugin and vgpu-smi
# (qemudm.h); linked from a library it costs the others nothing.
UTIL_OBJ := $(O)/util.o $(O)/qemudm.o
UTIL_H := $(UTIL_DIR)/util.h $(UTIL_DIR)/qemudm.h
CFLAGS_COMMON += -I$(UTIL_DIR)

# The rule below must not become the including Makefile's default goal.
util_saved_goal := $(.DEFAULT_GOAL)
$(O)/util.o: $(UTIL_DIR)/util.c $(UTIL_H) | $(O)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
$(O)/qemudm.o: $(UTIL_DIR)/qemudm.c $(UTIL_H) | $(O)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
.DEFAULT_GOAL := $(util_saved_goal)
