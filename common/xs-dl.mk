# common/xs-dl.mk - the build rule of common/xs-dl.o, the libxenstore shim
# (see xs-dl.c) that the dom0 programs link instead of -lxenstore.
#
# A part's Makefile includes it once O is set, adds $(XS_DL_OBJ) to what it
# links (or to its library) and $(XS_DL_LIBS) to its link line.  The object
# is built into the part's own $(O), with the part's compiler and flags, so
# the plain, sanitized and dom0 (DOM0=1) builds each get theirs.

XS_DL_DIR := $(TOP)/common
XS_DL_OBJ := $(O)/xs-dl.o
# dlopen/dlsym are in libdl and pthread_once in libpthread up to glibc 2.33
# (the dom0 binaries are built against 2.17).
XS_DL_LIBS := -ldl -pthread

# The rule below must not become the including Makefile's default goal.
xs_dl_saved_goal := $(.DEFAULT_GOAL)
$(XS_DL_OBJ): $(XS_DL_DIR)/xs-dl.c $(XS_DL_DIR)/xs-dl.h | $(O)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
.DEFAULT_GOAL := $(xs_dl_saved_goal)
