/* port.c - ajpq_port_init and ajpq_port_exit of the nrf52840 port (nRF52840-DK).
 *
 * Clock: the CPU always runs at 64 MHz (HFCLK); ajpq_port_init only switches its source from
 * the internal RC oscillator (HFINT, less accurate) to the DK's 32 MHz crystal (HFXO) with
 * TASKS_HFCLKSTART, which makes the UART baud rate and any cycle-to-time conversion accurate.
 * If the crystal does not report running within a bounded wait the port carries on from
 * HFINT (the UART then relies on the receiver's tolerance).
 * Debug access: on build code F and later parts, access port protection is on after every
 * reset unless firmware opens it; like the nRF MDK's SystemInit, the port writes
 * APPROTECT.DISABLE only when UICR.APPROTECT says HwDisabled (0x5A), which older parts never
 * hold, so a part the user locked stays locked.
 * The Cortex-M4 has no caches of its own; the NVMC's flash instruction cache (off after
 * reset) is enabled, as the nRF SDK and Zephyr do.
 */
#include "ajpq_port.h"
#include "nrf52840_regs.h"

#define HFXO_START_SPINS 2000000u /* HFXO starts in about 0.3 ms; this waits over 100 ms */

void ajpq_port_uart_init(void);  /* uart.c */
void ajpq_port_timer_init(void); /* timer.c */

static void start_crystal(void)
{
    CLOCK_EVENTS_HFCLKSTARTED = 0;
    CLOCK_TASKS_HFCLKSTART = 1;
    for (uint32_t spin = 0; spin < HFXO_START_SPINS; spin++) {
        if (CLOCK_EVENTS_HFCLKSTARTED != 0) {
            break;
        }
    }
    CLOCK_EVENTS_HFCLKSTARTED = 0;
}

void ajpq_port_init(void)
{
    if (UICR_APPROTECT == UICR_APPROTECT_HW_DISABLED) {
        APPROTECT_DISABLE = APPROTECT_DISABLE_SW_DISABLE;
    }
    start_crystal();
    NVMC_ICACHECNF = NVMC_ICACHECNF_CACHEEN;
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
    for (;;) {
    }
}
