/* port.c - ajpq_port_init and ajpq_port_exit of the stm32h7 port (NUCLEO-H743ZI).
 *
 * Clock: the part runs from the 64 MHz HSI it resets to (voltage scale 3, the reset value,
 * allows it); the PLL is not started (400 MHz needs PLL1, the LDO supply configuration
 * locked in PWR_CR3, voltage scale 1 and 2 flash wait states, none of which can be checked
 * without the board). Flash keeps its reset latency (FLASH_ACR: 7 wait states), which is
 * more than 64 MHz needs; the instruction cache hides most of it. DWT counts are core
 * cycles; wall-clock time is cycles / 64 MHz, not / 400 MHz (see firmware/ports/README.md).
 * PWR_CR3 is left as reset: the supply configuration can be written only once after a
 * power-on, and changing nothing keeps a later firmware free to choose it.
 * The Cortex-M7 L1 instruction and data caches are enabled (invalidated first, as the
 * ARMv7-M cache maintenance rules require); nothing in the port uses DMA, so no coherency
 * maintenance is needed afterwards.
 */
#include "ajpq_port.h"
#include "stm32h7_regs.h"

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
