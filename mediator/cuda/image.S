/*
 * image.S - embeds the kernels' fatbin (built by nvcc from kernels.cu)
 * in the mediator as read-only data.  VGPU_CUDA_IMAGE is the fatbin's
 * path, given by the Makefile.  A NUL byte follows the image so that a
 * PTX-only image would also be a valid C string for cuModuleLoadData.
 */
    .section .rodata.vgpu_cuda_image, "a", @progbits
    .balign 64
    .globl vgpu_cuda_image
    .type vgpu_cuda_image, @object
vgpu_cuda_image:
    .incbin VGPU_CUDA_IMAGE
vgpu_cuda_image_end:
    .byte 0
    .size vgpu_cuda_image, . - vgpu_cuda_image

    .balign 8
    .globl vgpu_cuda_image_size
    .type vgpu_cuda_image_size, @object
vgpu_cuda_image_size:
    .quad vgpu_cuda_image_end - vgpu_cuda_image
    .size vgpu_cuda_image_size, 8

    .section .note.GNU-stack, "", @progbits
