/* port.c - ajpq_port_init and ajpq_port_exit of the stm32f7 port (STM32F746G-DISCO).
 *
 * Clock: the part runs from the 16 MHz HSI it resets to; the PLL is not started (216 MHz
 * needs HSE + PLL, voltage scale 1, over-drive and 7 flash wait states, none of which can be
 * checked without the board). At 16 MHz flash needs 0 wait states (RM0385 table 7), the reset
 * value of FLASH_ACR. DWT counts are core cycles, so a layer's cycle count stays comparable;
 * wall-clock time is cycles / 16 MHz, not / 216 MHz (see firmware/ports/README.md).
 * The Cortex-M7 L1 instruction and data caches are enabled (invalidated first, as the
 * ARMv7-M cache maintenance rules require); nothing in the port uses DMA, so no coherency
 * maintenance is needed afterwards.
 */
#include "ajpq_port.h"
#include "stm32f7_regs.h"

void ajpq_port_uart_init(void);  /* uart.c */
void ajpq_port_timer_init(void); /* timer.c */

static void enable_caches(void)
{
    __asm volatile("dsb\n\tisb" ::: "memory");
    SCB_ICIALLU = 0;
    __asm volatile("dsb\n\tisb" ::: "memory");
    SCB_CCR |= SCB_CCR_IC;
    __asm volatile("dsb\n\tisb" ::: "memory");

    SCB_CSSELR = 0; /* level 1 data cache */
    __asm volatile("dsb" ::: "memory");
    uint32_t geometry = SCB_CCSIDR;
    uint32_t sets = (geometry >> 13) & 0x7FFFu;
    uint32_t ways = (geometry >> 3) & 0x3FFu;
    for (uint32_t set = 0; set <= sets; set++) {
        for (uint32_t way = 0; way <= ways; way++) {
            SCB_DCISW = ((set << 5) & 0x3FE0u) | ((way << 30) & 0xC0000000u);
        }
    }
    __asm volatile("dsb" ::: "memory");
    SCB_CCR |= SCB_CCR_DC;
    __asm volatile("dsb\n\tisb" ::: "memory");
}

void ajpq_port_init(void)
{
    enable_caches();
    ajpq_port_uart_init();
    ajpq_port_timer_init();
}

/* A board has nowhere to return to: stop at a breakpoint when a debugger is attached
 * (DHCSR.C_DEBUGEN; `code` is in r0 for it to read), otherwise spin. Without a debugger a
 * BKPT would escalate to a HardFault, hence the check. */
void ajpq_port_exit(int code)
{
    if (COREDEBUG_DHCSR & COREDEBUG_DHCSR_C_DEBUGEN) {
        register int status __asm("r0") = code;
        __asm volatile("bkpt 0" ::"r"(status) : "memory");
    }
    for (;;) { /* no WFI: a sleeping STM32 drops the debug connection (DBGMCU_CR) */
    }
}
