/* Stand-in for QEMU 4.2's hw/qdev-properties.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_QDEV_PROPERTIES_H
#define QEMU_QDEV_PROPERTIES_H
#include "hw/qdev-core.h"
typedef struct PropertyInfo PropertyInfo;
struct Property {
    const char *name;
    const PropertyInfo *info;
    ptrdiff_t offset;
    uint8_t bitnr;
    bool set_default;
    union {
        int64_t i;
        uint64_t u;
    } defval;
};
extern const PropertyInfo qdev_prop_uint32;
extern const PropertyInfo qdev_prop_string;
#define DEFINE_PROP_UINT32(_n, _s, _f, _d) {                         \
        .name = (_n), .info = &qdev_prop_uint32,                     \
        .offset = offsetof(_s, _f) +                                 \
                  type_check(uint32_t, typeof_field(_s, _f)),        \
        .set_default = true, .defval.u = (uint32_t)(_d), }
#define DEFINE_PROP_STRING(_n, _s, _f) {                             \
        .name = (_n), .info = &qdev_prop_string,                     \
        .offset = offsetof(_s, _f) +                                 \
                  type_check(char *, typeof_field(_s, _f)), }
#define DEFINE_PROP_END_OF_LIST() {}
#endif
