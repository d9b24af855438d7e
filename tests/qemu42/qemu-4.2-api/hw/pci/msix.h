/* Stand-in for QEMU 4.2's hw/pci/msix.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_MSIX_H
#define QEMU_MSIX_H
#include "hw/pci/pci.h"
int msix_init_exclusive_bar(PCIDevice *dev, unsigned short nentries,
                            uint8_t bar_nr, Error **errp);
void msix_uninit_exclusive_bar(PCIDevice *dev);
int msix_enabled(PCIDevice *dev);
int msix_present(PCIDevice *dev);
int msix_vector_use(PCIDevice *dev, unsigned vector);   /* 7.2: void */
void msix_vector_unuse(PCIDevice *dev, unsigned vector);
void msix_notify(PCIDevice *dev, unsigned vector);
extern const VMStateDescription vmstate_msix;
#define VMSTATE_MSIX_TEST(_field, _state, _test) {                   \
    .name         = (stringify(_field)),                             \
    .size         = sizeof(PCIDevice),                               \
    .vmsd         = &vmstate_msix,                                   \
    .flags        = VMS_STRUCT,                                      \
    .offset       = vmstate_offset_value(_state, _field, PCIDevice), \
    .field_exists = (_test)                                          \
}
#define VMSTATE_MSIX(_f, _s)                                         \
    VMSTATE_MSIX_TEST(_f, _s, NULL)
#endif
