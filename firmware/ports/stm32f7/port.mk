# port.mk - how to compile for the stm32f7 port (STM32F746NG: Cortex-M7, single-precision
# FPv5 FPU). Plain `NAME = words` lines only: ajpq.backends.mcu.toolchain reads this file,
# and a Makefile may `include` it. Paths are relative to this folder.
PORT_CPU_FLAGS = -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
PORT_CFLAGS = -std=c99 -O2 -g -ffunction-sections -fdata-sections -Wall -Wextra
PORT_LDFLAGS = -nostartfiles --specs=nano.specs -Wl,--gc-sections
PORT_SOURCES = startup.c port.c uart.c ../common/cortexm_timer.c
PORT_LINKER_TEMPLATE = linker.ld.in
