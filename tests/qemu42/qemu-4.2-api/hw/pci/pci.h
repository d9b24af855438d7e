/* Stand-in for QEMU 4.2's hw/pci/pci.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_PCI_H
#define QEMU_PCI_H
#include "exec/memory.h"
#include "hw/qdev-core.h"
#include "migration/vmstate.h"
#define PCI_BASE_ADDRESS_SPACE_MEMORY 0x00
#define TYPE_PCI_DEVICE "pci-device"
#define INTERFACE_CONVENTIONAL_PCI_DEVICE "conventional-pci-device"
#define INTERFACE_PCIE_DEVICE "pci-express-device"
#define PCI_DEVICE_CLASS(klass) \
    OBJECT_CLASS_CHECK(PCIDeviceClass, (klass), TYPE_PCI_DEVICE)
typedef void PCIUnregisterFunc(PCIDevice *pci_dev);
typedef struct PCIDeviceClass {
    DeviceClass parent_class;
    void (*realize)(PCIDevice *dev, Error **errp);
    PCIUnregisterFunc *exit;
    uint16_t vendor_id;
    uint16_t device_id;
    uint8_t revision;
    uint16_t class_id;
    uint16_t subsystem_vendor_id;
    uint16_t subsystem_id;
    int is_bridge;
    const char *romfile;
} PCIDeviceClass;
struct PCIDevice {
    DeviceState qdev;
    uint8_t *config;
    int32_t devfn;
    char name[64];
};
/* An inline returning &dev->bus_master_as in 4.2. */
AddressSpace *pci_get_address_space(PCIDevice *dev);
void pci_register_bar(PCIDevice *pci_dev, int region_num, uint8_t attr,
                      MemoryRegion *memory);
/* sysemu/dma.h (included by pci.h) */
typedef uint64_t dma_addr_t;
/* 4.2: static inline, int result (7.2: MemTxResult) */
int pci_dma_read(PCIDevice *dev, dma_addr_t addr, void *buf, dma_addr_t len);
int pci_dma_write(PCIDevice *dev, dma_addr_t addr, const void *buf,
                  dma_addr_t len);
extern const VMStateDescription vmstate_pci_device;
#define VMSTATE_PCI_DEVICE(_field, _state) \
    VMSTATE_STRUCT_TYPED(_field, _state, vmstate_pci_device, PCIDevice)
#endif
