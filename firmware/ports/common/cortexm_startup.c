/* cortexm_startup.c - vector table, reset and fault handlers of every Cortex-M port.
 *
 * Only architectural Cortex-M registers are used, so one file serves every M3/M4/M7 part.
 * What differs per part comes from its port.mk (ajpq.backends.mcu.toolchain turns the lines
 * into defines):
 *   PORT_IRQS      -> AJPQ_PORT_IRQS, the part's external IRQ count: the vector table has the
 *                     16 core exception slots and one slot per IRQ.
 *   PORT_SET_VTOR  -> AJPQ_PORT_SET_VTOR (1: Reset_Handler points VTOR at the table, for a
 *                     part that may boot through an alias of flash or from a bootloader; 0:
 *                     the table sits at 0x0, where the core boots, and VTOR stays at reset).
 * The ports enable no interrupt but SysTick's (the timer's SysTick_Handler), so every IRQ
 * slot points at Default_Handler, which reports which one fired.
 *
 * Reset_Handler enables the FPU (CPACR: CP10 and CP11 full access, before any code built with
 * -mfloat-abi=hard runs), copies .data from flash, zeroes .bss and calls main(); its return
 * value goes to ajpq_port_exit. Exit statuses of the startup itself: 3 = HardFault, 4 = any
 * other unexpected exception; both print one line on the UART first
 * ("ajpq: HardFault pc=0x... cfsr=0x... hfsr=0x...").
 */
#include <stdint.h>

#include "ajpq_port.h"

#ifndef AJPQ_PORT_IRQS
#error "AJPQ_PORT_IRQS is not defined: give the port.mk a PORT_IRQS line (the part's IRQ count)"
#endif
#if AJPQ_PORT_IRQS < 1 || AJPQ_PORT_IRQS > 496
#error "AJPQ_PORT_IRQS must lie in 1..496 (ARMv7-M)"
#endif
#ifndef AJPQ_PORT_SET_VTOR
#define AJPQ_PORT_SET_VTOR 1
#endif

#define AJPQ_EXIT_HARDFAULT 3
#define AJPQ_EXIT_UNEXPECTED_EXCEPTION 4

/* System control block (ARMv7-M ARM B3.2). */
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

/* Symbols of the port's linker.ld.in. */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

typedef void (*vector_t)(void);
extern const vector_t ajpq_vectors[16 + AJPQ_PORT_IRQS];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void ajpq_hardfault_report(const uint32_t *frame);
void SysTick_Handler(void); /* the port's timer */

__attribute__((noreturn)) void Reset_Handler(void)
{
#if AJPQ_PORT_SET_VTOR
    SCB_VTOR = (uint32_t)(uintptr_t)ajpq_vectors;
#endif
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

/* Slots 7-10 and 13 are reserved (0). The IRQ range uses GCC's range designator. */
__attribute__((section(".isr_vector"), used)) const vector_t ajpq_vectors[16 + AJPQ_PORT_IRQS] = {
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
    [16 ... 15 + AJPQ_PORT_IRQS] = Default_Handler, /* external IRQs 0 .. AJPQ_PORT_IRQS-1 */
};
