/* Stand-in for QEMU 4.2.1's generated config-host.h (tests/qemu42). */
#define QEMU_VERSION "4.2.1"
#define QEMU_VERSION_MAJOR 4
#define QEMU_VERSION_MINOR 2
#define QEMU_VERSION_MICRO 1
#define CONFIG_LINUX 1
#define CONFIG_XEN 1
