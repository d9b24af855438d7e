/* Stand-in for QEMU 4.2's migration/vmstate.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_VMSTATE_H
#define QEMU_VMSTATE_H
typedef struct VMStateInfo VMStateInfo;
typedef struct VMStateField {
    const char *name;
    size_t offset;
    size_t size;
    int num;
    const VMStateInfo *info;
    const VMStateDescription *vmsd;
    int version_id;
    int flags;
    bool (*field_exists)(void *opaque, int version_id);
} VMStateField;
#define VMS_STRUCT 0x008
#define vmstate_offset_value(_state, _field, _type) \
    (offsetof(_state, _field) + type_check(_type, typeof_field(_state, _field)))
struct VMStateDescription {
    const char *name;
    int unmigratable;
    int version_id;
    int minimum_version_id;
    int minimum_version_id_old;
    int (*pre_load)(void *opaque);
    int (*post_load)(void *opaque, int version_id);
    int (*pre_save)(void *opaque);
    bool (*needed)(void *opaque);
    VMStateField *fields;       /* 4.2: not const */
    const VMStateDescription **subsections;
};
extern const VMStateInfo vmstate_info_uint32;
extern const VMStateInfo vmstate_info_uint8;
extern const VMStateInfo vmstate_info_uint64;
#define VMSTATE_UINT64(_f, _s) {                                     \
        .name = #_f, .info = &vmstate_info_uint64,                   \
        .size = sizeof(uint64_t),                                    \
        .offset = offsetof(_s, _f) +                                 \
                  type_check(uint64_t, typeof_field(_s, _f)), }
#define VMSTATE_UINT32(_f, _s) {                                     \
        .name = #_f, .info = &vmstate_info_uint32,                   \
        .size = sizeof(uint32_t),                                    \
        .offset = offsetof(_s, _f) +                                 \
                  type_check(uint32_t, typeof_field(_s, _f)), }
#define VMSTATE_UINT32_ARRAY(_f, _s, _n) {                           \
        .name = #_f, .info = &vmstate_info_uint32, .num = (_n),      \
        .size = sizeof(uint32_t),                                    \
        .offset = offsetof(_s, _f) +                                 \
                  type_check(uint32_t[_n], typeof_field(_s, _f)), }
#define VMSTATE_UINT8_ARRAY(_f, _s, _n) {                            \
        .name = #_f, .info = &vmstate_info_uint8, .num = (_n),       \
        .size = sizeof(uint8_t),                                     \
        .offset = offsetof(_s, _f) +                                 \
                  type_check(uint8_t[_n], typeof_field(_s, _f)), }
#define VMSTATE_STRUCT_TYPED(_f, _s, _vmsd, _type) {                 \
        .name = #_f, .vmsd = &(_vmsd), .size = sizeof(_type),        \
        .offset = offsetof(_s, _f) +                                 \
                  type_check(_type, typeof_field(_s, _f)), }
#define VMSTATE_END_OF_LIST() {}
#endif
