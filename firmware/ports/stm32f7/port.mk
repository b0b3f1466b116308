# port.mk - how to compile for the stm32f7 port (STM32F746NG: Cortex-M7, single-precision
# FPv5 FPU). Plain `NAME = words` lines only: ajpq.backends.mcu.toolchain reads this file,
# and a Makefile may `include` it. Paths are relative to this folder.
PORT_CPU_FLAGS = -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16
PORT_CFLAGS = -std=c99 -O2 -g -ffunction-sections -fdata-sections -Wall -Wextra
PORT_LDFLAGS = -nostartfiles --specs=nano.specs -Wl,--gc-sections
PORT_SOURCES = ../common/cortexm_startup.c port.c uart.c ../common/cortexm_timer.c
PORT_LINKER_TEMPLATE = linker.ld.in
# The vector table (common/cortexm_startup.c): 98 IRQs (RM0385 table 40, IRQ 0 WWDG ..
# IRQ 97 DMA2D); VTOR is set, as the part may boot through the ITCM alias of flash at 0x00200000.
PORT_IRQS = 98
PORT_SET_VTOR = 1
