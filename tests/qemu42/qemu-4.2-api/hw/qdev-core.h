/* Stand-in for QEMU 4.2's hw/qdev-core.h (tests/qemu42): not QEMU code. */
#ifndef QDEV_CORE_H
#define QDEV_CORE_H
#include "qemu/bitops.h"
#include "qom/object.h"
typedef enum DeviceCategory {
    DEVICE_CATEGORY_BRIDGE,
    DEVICE_CATEGORY_USB,
    DEVICE_CATEGORY_STORAGE,
    DEVICE_CATEGORY_NETWORK,
    DEVICE_CATEGORY_INPUT,
    DEVICE_CATEGORY_DISPLAY,
    DEVICE_CATEGORY_SOUND,
    DEVICE_CATEGORY_MISC,
    DEVICE_CATEGORY_CPU,
    DEVICE_CATEGORY_MAX
} DeviceCategory;
typedef void (*DeviceRealize)(DeviceState *dev, Error **errp);
typedef void (*DeviceUnrealize)(DeviceState *dev, Error **errp);
typedef void (*DeviceReset)(DeviceState *dev);
#define TYPE_DEVICE "device"
#define DEVICE_CLASS(klass) OBJECT_CLASS_CHECK(DeviceClass, (klass), TYPE_DEVICE)
typedef struct DeviceClass {
    ObjectClass parent_class;
    DECLARE_BITMAP(categories, DEVICE_CATEGORY_MAX);
    const char *fw_name;
    const char *desc;
    Property *props;            /* 4.2: a plain field, set by the device */
    bool user_creatable;
    bool hotpluggable;
    DeviceReset reset;
    DeviceRealize realize;
    DeviceUnrealize unrealize;
    const VMStateDescription *vmsd;
    const char *bus_type;
} DeviceClass;
struct DeviceState {
    Object parent_obj;
    const char *id;
    bool realized;
};
#endif
