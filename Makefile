# Makefile - the whole of vgpu from one place.
#
#   make          build the mediator, the guest tools and the test tools
#   make qemu     build QEMU 7.2 (Debian's source) with the vgpu-stub device
#   make check    build everything (host code with ASan/UBSan) and run every
#                 test: unit, integration and end-to-end in TCG guests
#   make demo     boot two VMs sharing one mediator and show what they get
#   make rpm      the RPMs (vgpu-mediator, vgpu-guest-tools) in build/rpm/RPMS/
#   make dom0     the dom0 binaries for XCP-ng 8.2/8.3 (GCC 4.8.5, glibc 2.17)
#                 in build/dom0/<part>, checked to need nothing above 2.17
#   make iso      the guest-tools ISO: build/iso/vgpu-guest-tools-<version>.iso
#   make fuzz     run every libFuzzer target for FUZZ_SECONDS (default 60)
#   make bench    benchmarks: the mediator path against direct execution, v2
#                 against its floors, a TCG guest's MMIO and interrupts per
#                 request, as ratios measured in the same run (CUDA rows
#                 need a GPU)
#   make gpu-check  on a machine with an NVIDIA GPU: protocol v3 (CUDA
#                 remoting) natively, in the mediator and in TCG guests on
#                 the real GPU (scripts/gpu-check.sh); says why it cannot
#                 run elsewhere
#   make soak     64 simulated VMs against the sanitized mediator for
#                 SOAK_SECONDS (default 300; make check runs 20)
#   make clean    remove build/ (the QEMU cache outside the checkout stays)
#
# Parts build into $(BUILD)/<part>; `make check` uses $(BUILD)/san/<part>.

SHELL := /bin/bash
BUILD ?= $(CURDIR)/build
SAN_BUILD := $(BUILD)/san
QEMU_PATH_FILE := $(BUILD)/qemu-path

# part folder : output name
PARTS := mediator:mediator tests/xs-server:xs-server xapi-plugin:xapi-plugin \
	tests/xapi:xapi guest-tools:guest-tools \
	tests/integration:integration tests/qemu42:qemu42
# the packaging test (builds and installs the RPMs into scratch roots)
PARTS += tests/rpm:rpm-tests
# libFuzzer targets (clang); `make check` replays their corpus
PARTS += tests/fuzz:fuzz
# the contract itself: the names and layouts, the kernel-facing headers
PARTS += tests/contract:contract
# the guest kernel module (vgpu.ko) for the kernel the e2e tests boot
PARTS += tests/kmod:kmod
# the reader of CUDA module images (fatbin, cubin, PTX); its test images
# are built with nvcc
PARTS += tests/cuda-image:cuda-image
# the guest CUDA test programs (nvcc-built; e2e test-cuda runs them)
PARTS += tests/cuda:cuda-tests
PARTS += tests/cuda-sim:cuda-sim

define build_parts
	@set -e; for p in $(PARTS); do \
		$(MAKE) --no-print-directory -C $${p%%:*} O=$(1)/$${p##*:} SAN=$(2); \
	done
endef

.PHONY: all deps qemu check check-build demo clean help
.PHONY: rpm
.PHONY: iso bench fuzz soak gpu-check

all: deps
	$(call build_parts,$(BUILD),0)

check-build: deps
	$(call build_parts,$(SAN_BUILD),1)
	$(MAKE) --no-print-directory -C tests/device O=$(SAN_BUILD)/device SAN=1

# The QEMU build is cached outside the checkout (see build-qemu.sh); this
# records where the binary is for the tests and the demo.
qemu: deps
	@mkdir -p $(BUILD)
	@set -o pipefail; qemu-dm-patch/build-qemu.sh | tail -n 1 > $(QEMU_PATH_FILE).tmp
	@mv $(QEMU_PATH_FILE).tmp $(QEMU_PATH_FILE)
	@echo "qemu: $$(cat $(QEMU_PATH_FILE))"

check: check-build qemu
	@VGPU_QEMU=$$(cat $(QEMU_PATH_FILE)) VGPU_BUILD=$(SAN_BUILD) \
		VGPU_GUEST_BUILD=$(SAN_BUILD)/guest-tools \
		tests/run-tests.sh $(SAN_BUILD)

demo: all qemu
	@VGPU_QEMU=$$(cat $(QEMU_PATH_FILE)) VGPU_BUILD=$(BUILD) \
		VGPU_GUEST_BUILD=$(BUILD)/guest-tools tests/e2e/demo.sh

# The guest-tools ISO (guest-tools/iso/build-iso.sh; version from VERSION).
# Guest binaries are never sanitized, so the plain build feeds it.
iso: deps
	@$(MAKE) -s --no-print-directory -C guest-tools O=$(BUILD)/guest-tools SAN=0 \
		$(BUILD)/guest-tools/libvgpu.a $(BUILD)/guest-tools/vgpu-client \
		$(BUILD)/guest-tools/cuda/libcuda.so.1
	@guest-tools/iso/build-iso.sh --guest-build $(BUILD)/guest-tools --out $(BUILD)/iso

# The RPMs with rpmbuild from a clean copy of the tree (rpm/build-rpms.sh,
# specs/): build/rpm/RPMS/x86_64/vgpu-mediator-*.rpm and
# build/rpm/RPMS/noarch/vgpu-guest-tools-*.rpm (with the ISO of make iso).
rpm: deps
	@rpm/build-rpms.sh $(BUILD)/rpm

# The dom0 binaries as the RPM ships them (mk/common.mk's DOM0=1; the
# toolchain comes from scripts/dom0-toolchain.sh), then the GLIBC check.
DOM0_BINS := mediator/vgpu-mediator mediator/vgpu-smi xapi-plugin/vgpu \
	xapi-plugin/vgpu-qemu-wrapper xapi-plugin/vgpu-pre-start \
	xapi-plugin/vgpu-publish xapi-plugin/vgpu-pool xapi-plugin/vgpu-pre-move
.PHONY: dom0
dom0: deps
	@set -e; for b in $(DOM0_BINS); do \
		$(MAKE) --no-print-directory -C $${b%/*} DOM0=1 O=$(BUILD)/dom0/$${b%/*} \
			DOM0_XS_INC=$(BUILD)/dom0/xs-include $(BUILD)/dom0/$$b; \
	done
	@tests/rpm/check-glibc.sh $(DOM0_BINS:%=$(BUILD)/dom0/%)

# Fuzzing (tests/fuzz): each libFuzzer target for FUZZ_SECONDS (default
# 60) from its corpus, which new finds are merged into.
fuzz: deps
	@$(MAKE) --no-print-directory -C tests/fuzz O=$(BUILD)/fuzz fuzz

# The soak of tests/integration/test-soak.c, longer than make check's.
SOAK_SECONDS ?= 300
soak: check-build
	@SOAK_SECONDS=$(SOAK_SECONDS) $(SAN_BUILD)/integration/test-soak

# Benchmarks (bench/run-bench.sh): ratios, never pass/fail on time; then
# the guest-side counts of one TCG guest (bench/guest-bench.sh) and v3's
# round trips per launch (bench/cuda-bench.sh), which need the QEMU build
# and vgpu.ko, and v3's rows against native on a GPU
# (bench/cuda-gpu-bench.sh); a skip line says why one cannot run.
bench: all qemu
	@$(MAKE) --no-print-directory -C bench bench BUILD=$(BUILD)
	@for b in guest-bench cuda-bench cuda-gpu-bench; do \
		VGPU_QEMU=$$(cat $(QEMU_PATH_FILE)) VGPU_BUILD=$(BUILD) \
		VGPU_GUEST_BUILD=$(BUILD)/guest-tools bench/$$b.sh; \
		rc=$$?; [ $$rc = 0 ] || [ $$rc = 77 ] || exit $$rc; done

# Debian packages the build and the tests need (installed when missing).
deps:
	@scripts/install-deps.sh

clean:
	rm -rf $(BUILD)

help:
	@sed -n '3,/^$$/p' Makefile

# Without a GPU it says why and succeeds: nothing it checks could run.
gpu-check:
	@BUILD=$(BUILD) scripts/gpu-check.sh; rc=$$?; [ $$rc = 77 ] || exit $$rc
