# port.mk - how to compile for the nrf52840 port (nRF52840: Cortex-M4, single-precision
# FPv4 FPU). Plain `NAME = words` lines only: ajpq.backends.mcu.toolchain reads this file,
# and a Makefile may `include` it. Paths are relative to this folder.
PORT_CPU_FLAGS = -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
PORT_CFLAGS = -std=c99 -O2 -g -ffunction-sections -fdata-sections -Wall -Wextra
PORT_LDFLAGS = -nostartfiles --specs=nano.specs -Wl,--gc-sections
PORT_SOURCES = startup.c port.c uart.c ../common/cortexm_timer.c
PORT_LINKER_TEMPLATE = linker.ld.in
