# port.mk - how to compile for qemu-mps2-an386 (Cortex-M4F, emulated by qemu-system-arm).
# Plain `NAME = words` lines only: ajpq.backends.mcu.toolchain reads this file, and a Makefile
# may `include` it. Paths in PORT_SOURCES and PORT_LINKER_TEMPLATE are relative to this folder.
PORT_CPU_FLAGS = -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
PORT_CFLAGS = -std=c99 -O2 -g -ffunction-sections -fdata-sections -Wall -Wextra
PORT_LDFLAGS = -nostartfiles --specs=nano.specs -Wl,--gc-sections
PORT_SOURCES = ../common/cortexm_startup.c port.c uart.c timer.c
PORT_LINKER_TEMPLATE = linker.ld.in
# The vector table (common/cortexm_startup.c): the AN386's 32 external IRQs; it sits at 0x0,
# where the core boots, so VTOR keeps its reset value.
PORT_IRQS = 32
PORT_SET_VTOR = 0
