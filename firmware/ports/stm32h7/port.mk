# port.mk - how to compile for the stm32h7 port (STM32H743ZI: Cortex-M7, double-precision
# FPv5 FPU). Plain `NAME = words` lines only: ajpq.backends.mcu.toolchain reads this file,
# and a Makefile may `include` it. Paths are relative to this folder.
PORT_CPU_FLAGS = -mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16
PORT_CFLAGS = -std=c99 -O2 -g -ffunction-sections -fdata-sections -Wall -Wextra
PORT_LDFLAGS = -nostartfiles --specs=nano.specs -Wl,--gc-sections
PORT_SOURCES = ../common/cortexm_startup.c port.c uart.c ../common/cortexm_timer.c
PORT_LINKER_TEMPLATE = linker.ld.in
# The vector table (common/cortexm_startup.c): 150 IRQs (RM0433 table 147, IRQ 0 WWDG ..
# IRQ 149 WAKEUP_PIN); VTOR is set, as the boot address comes from the BOOT_ADD0 option byte.
PORT_IRQS = 150
PORT_SET_VTOR = 1
