/*
 * cuda_image.h - owns reading CUDA module images: the fatbin container
 * nvcc makes, a cubin (ELF), PTX text.  Three parts use it: the guest's
 * drop-in libcuda.so.1 (how many bytes a cuModuleLoadData(image) pointer
 * covers, which the API does not say), the host's test double of libcuda
 * (kernel names and parameter layouts of a real nvcc-built image) and the
 * host daemon (a kernel's parameter layout when the driver lacks
 * cuFuncGetParamInfo).  Every byte is treated as hostile: nothing is read
 * outside [p, p + max), no input is undefined behaviour, and the work is
 * linear in the input (plus one allocation of 4 bytes per ELF section).
 *
 * The memory must not change while a call reads it: a caller handed
 * memory that someone else can write (a guest's pages) copies it first.
 *
 * The formats, as found in CUDA 13.0 (nvcc V13.0.88) output, sm_75 and
 * sm_80, by building the .cu files of tests/cuda-image/images/ with -cubin,
 * -ptx and -fatbin and reading the bytes with readelf and xxd (cuobjdump is not
 * installed here); test-cuda-image.c checks every rule below against
 * fresh nvcc output each time it runs.
 *
 * Fatbin (what -fatbin writes, what .nv_fatbin of a program holds):
 *   header, 16 bytes: u32 magic 0xBA55ED50, u16 version (1), u16 header
 *   size (16), u64 payload size; the image is header size + payload size
 *   bytes.  The payload is a run of entries, each an entry header then
 *   its payload, back to back up to the end exactly:
 *     0  u16 kind: 1 PTX, 2 ELF (cubin)
 *     2  u16 entry version (0x0101)
 *     4  u32 entry header size (64 for ELF, 80 for PTX)
 *     8  u64 payload size (padded to 8; the payload follows the header)
 *     16 u32 compressed size (0 when not compressed)
 *     20 u32 ? (0x40 for PTX, 0 for ELF)
 *     24 u16 minor, u16 major version (ELF 1.8, PTX ISA 9.0)
 *     28 u32 arch (75, 80)
 *     32 u32 name offset, 36 u32 name length (both 0 from nvcc)
 *     40 u64 flags: 0x1 64-bit, 0x10 Linux; compressed is 0x8000 (zstd,
 *        what CUDA 13 writes: the payload starts 28 b5 2f fd) or, in older
 *        CUDA, 0x2000 (LZ4)
 *     48 u64 0
 *     56 u64 uncompressed size (0 when not compressed)
 *   An ELF payload is a whole cubin, a PTX payload NUL-terminated text
 *   (comments stripped) padded with NULs.  nvcc 13 compresses PTX entries
 *   by default (fatbinary --compress defaults to true: "ptx and debug
 *   images"), and every entry with -Xfatbin -compress-all; nvcc
 *   --no-compress (or -Xfatbin=-compress=false) writes none compressed.
 *   A compressed entry is not decompressed here: it is skipped and
 *   counted.  An entry of another kind is skipped silently.
 *
 * Cubin: a 64-bit little-endian ELF, e_machine EM_CUDA (190).  A kernel
 *   is a symbol of type STT_FUNC with STO_CUDA_ENTRY (0x10) in st_other
 *   whose section is named ".text.<name>" (a non-inlined __device__
 *   function of an -rdc build has its own .text.<name> and .nv.info.<name>
 *   too, but no 0x10).  Its attributes are in the section ".nv.info.<name>"
 *   whose sh_info is the index of the .text.<name> section: records of
 *   u8 format, u8 attribute, u16 value; for format EIFMT_SVAL (0x04) the
 *   u16 is a size and that many bytes follow, for EIFMT_NVAL (0x01),
 *   EIFMT_BVAL (0x02) and EIFMT_HVAL (0x03) the record is those 4 bytes
 *   (NVAL's u16 seen as 0; BVAL not seen, taken as the same shape).
 *   Attributes used:
 *     EIATTR_PARAM_CBANK 0x0a (SVAL 8): u32 symbol index of the
 *       .nv.constant0.<name> section, u16 offset of the parameters in it
 *       (0x160, or 0x1a80 for more than 4 KiB of parameters), u16 size =
 *       total parameter bytes
 *     EIATTR_CBANK_PARAM_SIZE 0x19 (HVAL): total parameter bytes
 *     EIATTR_KPARAM_INFO 0x17 (SVAL 12), one per parameter, last first:
 *       u32 index (0), u16 ordinal, u16 offset, u32 flags: parameter size
 *       in bits 18..31, bits 12..16 seen as 0x1f, the rest 0 (checked for
 *       sizes 1, 2, 4, 8, 12, 16 (aligned), 40, 4000)
 *     EIATTR_KPARAM_INFO_V2 0x45 (SVAL 12), instead of 0x17 for every
 *       parameter of a kernel with more than 4 KiB of them: u32 index (0),
 *       u16 ordinal, u16 offset, u32 size (seen: 1, 2, 4, 8, 16000,
 *       16383, 16384, 20000)
 *   A kernel without parameters has none of them.  The total nvcc
 *   records is always the end of the last parameter: (double, char) is 9.
 *
 * PTX: text that begins (after white space and comments) with .version.
 *   A kernel is ".entry NAME ( .param TYPE NAME, ... )" (".visible" or
 *   ".weak" before it) followed by its body "{"; one followed by ";" is a
 *   declaration and is not reported.  Sizes: .u8/.s8/.b8 1, .u16/.s16/
 *   .b16/.f16/.bf16 2, .u32/.s32/.b32/.f32/.f16x2/.bf16x2 4, .u64/.s64/
 *   .b64/.f64 8, .b128 16; "NAME[N]" is N of them; ".align A" sets the
 *   alignment (else the element size); ".ptr", a state space and its
 *   ".align" after the type describe what a pointer points to and change
 *   nothing.  Offsets are the running total aligned up, in order: nvcc's
 *   PTX for a struct of 3 ints is ".align 4 .b8 x[12]", for an
 *   __align__(16) one ".align 16 .b8 x[16]", and the layouts computed so
 *   equal the cubin's for every test kernel.
 *
 * Limits: at most CUDA_IMAGE_MAX_PARAMS parameters and
 * CUDA_IMAGE_MAX_PARAM_BYTES bytes of them (what CUDA 12.1+ allows), names
 * of at most CUDA_IMAGE_MAX_NAME bytes; a kernel past them, or whose
 * layout is not a set of ordinals 0..n-1 with ascending, non-overlapping
 * ranges, makes its image malformed.
 */
#ifndef VGPU_COMMON_CUDA_IMAGE_H
#define VGPU_COMMON_CUDA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

enum cuda_image_kind {
    CUDA_IMAGE_NONE = 0,
    CUDA_IMAGE_FATBIN,
    CUDA_IMAGE_ELF,
    CUDA_IMAGE_PTX
};

#define CUDA_IMAGE_MAX_PARAMS 256
#define CUDA_IMAGE_MAX_PARAM_BYTES 32764
#define CUDA_IMAGE_MAX_NAME 4096

#define CUDA_FATBIN_MAGIC 0xBA55ED50u

struct cuda_param {
    uint32_t offset;
    uint32_t size;
};

struct cuda_kernel_info {
    uint32_t count; /* parameters */
    uint32_t total; /* bytes of the parameter block: offset+size of the last */
    struct cuda_param param[CUDA_IMAGE_MAX_PARAMS];
};

/*
 * What kind of image starts at p and how many bytes it covers, reading at
 * most max bytes.
 *   fatbin: header magic 0xBA55ED50 (little-endian u32), u16 version
 *     (1), u16 header size (>= 16), u64 payload size -> size = header
 *     size + payload size (entries are not read).
 *   ELF: 64-bit little-endian ELF of EM_CUDA (cubin): size = the furthest
 *     end of the ELF header, program headers, section header table and
 *     every section's file range (SHT_NOBITS excluded).
 *   PTX: NUL-terminated text that (after white space and comments) starts
 *     with ".version": size = strlen + 1.
 * Returns 0 and sets *kind and *size, or -1 (not an image, truncated
 * within max, sizes overflowing, bad header); either pointer may be NULL.
 */
int cuda_image_size(const void *p, size_t max, enum cuda_image_kind *kind,
                    size_t *size);

/* Called per kernel; a nonzero return stops the walk. */
typedef int (*cuda_image_kernel_fn)(void *arg, const char *name,
                                    const struct cuda_kernel_info *info);

/*
 * Call fn for each kernel (entry function) the image at p (at most len
 * bytes; the image may be shorter) holds: its name (NUL-terminated, valid
 * during the call) and its parameter layout.  For a fatbin, every entry
 * of the container, ELF and PTX, in order; an entry flagged compressed is
 * skipped and counted in *skipped_compressed if that pointer is non-NULL
 * (it is set to 0 first).  The same kernel may then be reported more than
 * once (once per architecture): callers dedupe.  Returns the number of
 * kernels reported (the one whose fn stopped the walk included), or -1
 * when the image is malformed; kernels reported before a malformed part
 * was found have been reported.
 */
int cuda_image_kernels(const void *p, size_t len, cuda_image_kernel_fn fn,
                       void *arg, unsigned *skipped_compressed);

/* Find one kernel by name (the first entry holding it): 0 and *info
 * filled, -1 not found or malformed. */
int cuda_image_find_kernel(const void *p, size_t len, const char *name,
                           struct cuda_kernel_info *info);

#endif
