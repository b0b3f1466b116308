/* startup.c - vector table, reset and fault handlers of the nrf52840 port (nRF52840).
 *
 * The vector table has the 16 Cortex-M4 exception slots and the part's 48 peripheral IRQs
 * (IRQ 0 POWER_CLOCK .. IRQ 47 SPIM3, the instantiation table of the product specification); the port enables no interrupt but SysTick's,
 * so every IRQ slot points at Default_Handler, which reports which one fired.
 * Reset_Handler points VTOR at the table (it is at 0x0, where the core boots, unless a
 * bootloader started this image), enables the FPU (CPACR: CP10 and CP11 full access, before any code built
 * with -mfloat-abi=hard runs), copies .data from flash, zeroes .bss and calls main(); its
 * return value goes to ajpq_port_exit.
 * A HardFault prints one line on the UART ("ajpq: HardFault pc=0x... cfsr=0x... hfsr=0x...")
 * and then exits with status 3 (ajpq_port_exit: on a board that means it stops there).
 */
#include <stdint.h>

#include "ajpq_port.h"
#include "nrf52840_regs.h"

#define AJPQ_EXIT_HARDFAULT 3
#define AJPQ_EXIT_UNEXPECTED_EXCEPTION 4
#define EXTERNAL_IRQS 48

/* Symbols of linker.ld.in. */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

typedef void (*vector_t)(void);
extern const vector_t ajpq_vectors[16 + EXTERNAL_IRQS];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void ajpq_hardfault_report(const uint32_t *frame);
void SysTick_Handler(void); /* timer.c */

__attribute__((noreturn)) void Reset_Handler(void)
{
    SCB_VTOR = (uint32_t)(uintptr_t)ajpq_vectors;
    SCB_CPACR |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");
    const uint32_t *source = &_sidata;
    uint32_t *target = &_sdata;
    while (target < &_edata) {
        *target++ = *source++;
    }
    for (target = &_sbss; target < &_ebss; target++) {
        *target = 0;
    }
    ajpq_port_exit(main());
}

static void print_hex(const char *label, uint32_t value)
{
    char text[11];
    text[0] = '0';
    text[1] = 'x';
    for (int digit = 0; digit < 8; digit++) {
        text[2 + digit] = "0123456789abcdef"[(value >> (28 - 4 * digit)) & 0xFu];
    }
    text[10] = '\0';
    ajpq_uart_print(label);
    ajpq_uart_print(text);
}

/* Called by HardFault_Handler with the stacked exception frame (r0-r3, r12, lr, pc, xpsr). */
__attribute__((noreturn, used)) void ajpq_hardfault_report(const uint32_t *frame)
{
    print_hex("\najpq: HardFault pc=", frame[6]);
    print_hex(" cfsr=", SCB_CFSR);
    print_hex(" hfsr=", SCB_HFSR);
    ajpq_uart_print("\n");
    ajpq_port_exit(AJPQ_EXIT_HARDFAULT);
}

__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile("tst lr, #4\n\t"
                   "ite eq\n\t"
                   "mrseq r0, msp\n\t"
                   "mrsne r0, psp\n\t"
                   "b ajpq_hardfault_report\n\t");
}

__attribute__((noreturn)) void Default_Handler(void)
{
    print_hex("\najpq: unexpected exception ", SCB_ICSR & 0x1FFu);
    ajpq_uart_print("\n");
    ajpq_port_exit(AJPQ_EXIT_UNEXPECTED_EXCEPTION);
}

#define DEFAULT_X2 Default_Handler, Default_Handler
#define DEFAULT_X8 DEFAULT_X2, DEFAULT_X2, DEFAULT_X2, DEFAULT_X2
#define DEFAULT_X32 DEFAULT_X8, DEFAULT_X8, DEFAULT_X8, DEFAULT_X8

__attribute__((section(".isr_vector"), used)) const vector_t ajpq_vectors[16 + EXTERNAL_IRQS] = {
    [0] = (vector_t)(uintptr_t)&_estack,
    [1] = Reset_Handler,
    [2] = Default_Handler,  /* NMI */
    [3] = HardFault_Handler,
    [4] = Default_Handler,  /* MemManage */
    [5] = Default_Handler,  /* BusFault */
    [6] = Default_Handler,  /* UsageFault */
    [11] = Default_Handler, /* SVCall */
    [12] = Default_Handler, /* DebugMonitor */
    [14] = Default_Handler, /* PendSV */
    [15] = SysTick_Handler,
    [16] = DEFAULT_X32, DEFAULT_X8, DEFAULT_X8, /* IRQ 0..47 */
};
