/* ajpq_port.h - the API every board port implements: init, uart, timer (and exit).
 *
 * A port lives in firmware/ports/<board>/ and provides these functions; everything else in
 * the firmware is portable C99 that also compiles on the host.
 *
 * Timer units
 *  ajpq_timer_now() returns a free-running 32-bit count; differences are taken modulo 2^32
 *  (end - start as uint32_t), so one measurement may span up to 2^32 ticks. What one tick is
 *  depends on ajpq_timer_source():
 *   - "dwt": the DWT cycle counter of a real Cortex-M3/M4/M7 core; one tick = one core cycle.
 *   - "systick-icount": SysTick clocked by the core clock (reload 0xFFFFFF), extended to
 *     32 bits by counting wraps in SysTick_Handler. This is the fallback when CYCCNT does not
 *     advance, which is the case under QEMU (the DWT is not emulated). Under QEMU with
 *     `-icount shift=0` each guest instruction advances virtual time by exactly 1 ns and the
 *     mps2 SYSCLK is 25 MHz, so one SysTick tick = 40 instructions, deterministically: a
 *     count of INSTRUCTIONS, never of real cycles. Without -icount SysTick follows host time
 *     and is not reproducible (the firmware cannot tell; the host knows how it ran QEMU).
 *  ajpq_timer_units_per_tick() gives the multiplier from ticks to the source's unit (cycles
 *  for "dwt": 1; instructions for "systick-icount": 40), and ajpq_timer_elapsed() applies it.
 */
#ifndef AJPQ_PORT_H
#define AJPQ_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bring up the clocks, the UART and the timer. Call once, first thing in main(). */
void ajpq_port_init(void);

/* Write n bytes to the board's serial port; blocks until all are queued. */
void ajpq_uart_write(const uint8_t *data, size_t n);

/* Read one byte from the serial port, blocking until one arrives; returns 0..255. */
int ajpq_uart_read_byte(void);

/* Free-running 32-bit tick count (see "Timer units" above). */
uint32_t ajpq_timer_now(void);

/* "dwt" or "systick-icount": which counter ajpq_timer_now() reads. */
const char *ajpq_timer_source(void);

/* Ticks -> unit of the source: cycles ("dwt") or instructions ("systick-icount"). */
uint32_t ajpq_timer_units_per_tick(void);

/* Stop the program with an exit status: semihosting SYS_EXIT_EXTENDED on QEMU (QEMU exits
 * with `code`); on a real board without a debugger, spin forever. Never returns. */
void ajpq_port_exit(int code) __attribute__((noreturn));

/* Elapsed cycles or instructions between two ajpq_timer_now() readings. */
static inline uint64_t ajpq_timer_elapsed(uint32_t start, uint32_t end)
{
    return (uint64_t)(uint32_t)(end - start) * ajpq_timer_units_per_tick();
}

/* Write a NUL-terminated string to the serial port. */
static inline void ajpq_uart_print(const char *text)
{
    size_t n = 0;
    while (text[n] != '\0') {
        n++;
    }
    ajpq_uart_write((const uint8_t *)text, n);
}

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_PORT_H */
