# mediator/cuda/cuda.mk - the CUDA backend's part of the mediator build,
# included by mediator/Makefile once LIB_OBJS is set.
#
# With nvcc and cuda.h: nvcc compiles cuda/kernels.cu into a fatbin
# ($(O)/kernels.fatbin: SASS for CUDA_ARCHS plus PTX of the first one for
# JIT on newer GPUs), cuda/image.S embeds it (.incbin) as vgpu_cuda_image,
# and backend_cuda.c (cuda.h for types only; libcuda.so.1 is dlopened at
# run time, never linked) replaces backend_cuda_none.c.  Without them the
# build goes on with backend_cuda_none.c (vgpu_backend_cuda == NULL).
#
#   NVCC=PATH        nvcc to use (default: nvcc on PATH, else
#                    /usr/local/cuda/bin/nvcc); NVCC=/nonexistent builds
#                    without the CUDA backend
#   CUDA_INC=DIR     where cuda.h is (default: ../include next to nvcc,
#                    else /usr/local/cuda/include, else /usr/include)
#   CUDA_ARCHS="..." SASS targets (default 75 80 86 89 90 100 120;
#                    CUDA 13's oldest is 75)

# common.mk's TOP is computed lazily from the LAST makefile read, which
# is this one once it is included: pin it to the checkout's root now.
ifeq ($(origin TOP),file)
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
endif

ifeq ($(origin NVCC),undefined)
NVCC := $(or $(shell command -v nvcc 2>/dev/null),/usr/local/cuda/bin/nvcc)
endif
ifeq ($(origin CUDA_INC),undefined)
CUDA_INC := $(patsubst %/cuda.h,%,$(firstword $(wildcard \
	$(if $(realpath $(NVCC)),$(dir $(realpath $(NVCC)))../include/cuda.h) \
	/usr/local/cuda/include/cuda.h /usr/include/cuda.h)))
endif
HAVE_CUDA := $(if $(and $(realpath $(NVCC)),$(wildcard $(CUDA_INC)/cuda.h)),1,0)
CUDA_ARCHS ?= 75 80 86 89 90 100 120
NVCC_FLAGS ?= -O3 -std=c++17

# The variant a build folder holds; switching rebuilds the right object.
CUDA_STAMP := $(O)/cuda-backend.$(HAVE_CUDA)

TESTS += test-backend-cuda test-remote
LIBS += -ldl

# The rules below must not become the Makefile's default goal.
cuda_saved_goal := $(.DEFAULT_GOAL)

ifeq ($(HAVE_CUDA),1)
NVCC_GENCODE := $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
	-gencode arch=compute_$(firstword $(CUDA_ARCHS)),code=compute_$(firstword $(CUDA_ARCHS))
LIB_OBJS := $(filter-out $(O)/backend_cuda_none.o,$(LIB_OBJS)) \
	$(O)/backend_cuda.o $(O)/cuda-image.o $(O)/cuda/api.o \
	$(O)/remote/exec.o $(O)/cuda_image.o

# The image reader (common/cuda_image.h): the parameter layout of a guest's
# kernel when the driver cannot tell (remote/exec.c).
$(O)/cuda_image.o: $(TOP)/common/cuda_image.c $(TOP)/common/cuda_image.h | $(O)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/kernels.fatbin: cuda/kernels.cu cuda/image.h | $(O)
	$(NVCC) $(NVCC_FLAGS) $(NVCC_GENCODE) -fatbin -o $@ $<

$(O)/cuda-image.o: cuda/image.S $(O)/kernels.fatbin $(CUDA_STAMP)
	$(CC) $(ALL_CFLAGS) -DVGPU_CUDA_IMAGE='"$(O)/kernels.fatbin"' -c -o $@ $<

$(O)/backend_cuda.o $(O)/cuda/api.o $(O)/remote/exec.o: \
	CFLAGS_COMMON += -isystem $(CUDA_INC)
$(O)/backend_cuda.o $(O)/cuda/api.o $(O)/remote/exec.o: \
	$(wildcard cuda/*.h remote/*.h) $(CUDA_STAMP)

# A stand-in libcuda.so.1 for the tests, a test double kept with them
# (tests/fakes/fake-libcuda.c): the backend's run-time path (dlopen,
# contexts, memory, errors) without a GPU.  Only test-backend-cuda needs
# it; nothing installs it.  Built without the sanitizers: it stands for a
# foreign library.  Its soname is not libcuda.so.1, or a later
# dlopen("libcuda.so.1") in the same process would find it instead of the
# real driver.
$(O)/fake-cuda/libcuda-fake.so: tests/fakes/fake-libcuda.c cuda/image.h \
		$(TOP)/common/cuda_image.c $(TOP)/common/cuda_image.h | $(O)
	mkdir -p $(O)/fake-cuda
	$(CC) $(filter-out -fsanitize% -fno-sanitize%,$(ALL_CFLAGS)) \
		-isystem $(CUDA_INC) -fPIC -shared -fvisibility=hidden \
		-Wl,-soname,libcuda-fake.so -o $@ $< $(TOP)/common/cuda_image.c \
		-pthread

$(O)/test-backend-cuda: $(O)/fake-cuda/libcuda-fake.so

# test-remote: protocol v3 against the stand-in, with the guest test
# programs' own kernels (tests/cuda/kernels.cu) built as the guest builds
# them.
$(O)/test-remote: $(O)/fake-cuda/libcuda-fake.so \
	$(O)/guest-cuda/kernels.fatbin $(O)/guest-cuda/kernels.ptx
$(O)/guest-cuda/%: $(TOP)/tests/cuda/kernels.cu $(TOP)/tests/cuda/Makefile
	$(MAKE) --no-print-directory -C $(TOP)/tests/cuda O=$(O)/guest-cuda \
		NVCC=$(NVCC) $@
else
$(O)/backend_cuda_none.o: $(wildcard cuda/*.h) $(CUDA_STAMP)
endif

$(CUDA_STAMP): | $(O)
	rm -f $(O)/cuda-backend.0 $(O)/cuda-backend.1 && touch $@

.DEFAULT_GOAL := $(cuda_saved_goal)
