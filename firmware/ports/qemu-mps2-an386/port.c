/* port.c - ajpq_port_init and ajpq_port_exit of the qemu-mps2-an386 port. */
#include "ajpq_port.h"

void ajpq_port_uart_init(void);  /* uart.c */
void ajpq_port_timer_init(void); /* timer.c */

void ajpq_port_init(void)
{
    ajpq_port_uart_init();
    ajpq_port_timer_init();
}

/* Semihosting SYS_EXIT_EXTENDED (0x20) with ADP_Stopped_ApplicationExit: QEMU (started with
 * -semihosting-config enable=on) exits with `code` as its own exit status. */
void ajpq_port_exit(int code)
{
    volatile uint32_t block[2] = {0x20026u, (uint32_t)code};
    register uint32_t operation __asm("r0") = 0x20u;
    register volatile uint32_t *argument __asm("r1") = block;
    __asm volatile("bkpt 0xAB" : "+r"(operation) : "r"(argument) : "memory");
    for (;;) {
    }
}
