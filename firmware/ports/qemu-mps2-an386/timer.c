/* timer.c - DWT cycle counter when it runs, else SysTick extended to 32 bits.
 *
 * ajpq_port_timer_init probes the DWT: it sets DEMCR.TRCENA and DWT_CTRL.CYCCNTENA, then
 * reads CYCCNT around a few instructions. If the count moved, ajpq_timer_now reads CYCCNT
 * (one tick = one cycle). Otherwise (QEMU: the DWT is not emulated and reads 0) SysTick runs
 * from the core clock with reload 0xFFFFFF and counts its wraps in SysTick_Handler; under
 * QEMU -icount shift=0 one tick is 40 instructions (see ajpq_port.h).
 */
#include "ajpq_port.h"

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_CTRL_CYCCNTENA 0x1u

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_CSR_ENABLE 0x1u
#define SYST_CSR_TICKINT 0x2u
#define SYST_CSR_CLKSOURCE_CORE 0x4u
#define SYST_RELOAD 0xFFFFFFu
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)
#define SCB_SHPR3 (*(volatile uint32_t *)0xE000ED20u)

/* Instructions per SysTick tick under QEMU -icount shift=0: 1 ns per instruction, 25 MHz. */
#define SYSTICK_ICOUNT_INSTRUCTIONS_PER_TICK 40u

void ajpq_port_timer_init(void);
void SysTick_Handler(void);

static int use_dwt;
static volatile uint32_t systick_wraps;

void SysTick_Handler(void)
{
    systick_wraps++;
}

static int dwt_cycle_counter_runs(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    uint32_t before = DWT_CYCCNT;
    __asm volatile("nop\n\tnop\n\tnop\n\tnop\n\tnop\n\tnop\n\tnop\n\tnop" ::: "memory");
    uint32_t after = DWT_CYCCNT;
    return after != before;
}

void ajpq_port_timer_init(void)
{
    use_dwt = dwt_cycle_counter_runs();
    if (use_dwt) {
        return;
    }
    SCB_SHPR3 &= 0x00FFFFFFu; /* SysTick at the highest priority */
    systick_wraps = 0;
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE_CORE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

uint32_t ajpq_timer_now(void)
{
    if (use_dwt) {
        return DWT_CYCCNT;
    }
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    uint32_t wraps = systick_wraps;
    uint32_t value = SYST_CVR;
    if (SCB_ICSR & ICSR_PENDSTSET) { /* wrapped, SysTick_Handler not run yet */
        value = SYST_CVR;
        wraps++;
    }
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
    return (wraps << 24) | (SYST_RELOAD - value);
}

const char *ajpq_timer_source(void)
{
    return use_dwt ? "dwt" : "systick-icount";
}

uint32_t ajpq_timer_units_per_tick(void)
{
    return use_dwt ? 1u : SYSTICK_ICOUNT_INSTRUCTIONS_PER_TICK;
}
