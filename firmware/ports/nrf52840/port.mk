# port.mk - how to compile for the nrf52840 port (nRF52840: Cortex-M4, single-precision
# FPv4 FPU). Plain `NAME = words` lines only: ajpq.backends.mcu.toolchain reads this file,
# and a Makefile may `include` it. Paths are relative to this folder.
PORT_CPU_FLAGS = -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
PORT_CFLAGS = -std=c99 -O2 -g -ffunction-sections -fdata-sections -Wall -Wextra
PORT_LDFLAGS = -nostartfiles --specs=nano.specs -Wl,--gc-sections
PORT_SOURCES = ../common/cortexm_startup.c port.c uart.c ../common/cortexm_timer.c
PORT_LINKER_TEMPLATE = linker.ld.in
# The vector table (common/cortexm_startup.c): 48 peripheral IRQs (IRQ 0 POWER_CLOCK ..
# IRQ 47 SPIM3); VTOR is set, in case a bootloader started this image.
PORT_IRQS = 48
PORT_SET_VTOR = 1
