/* cortexm_timer.c - the timer of the real-board ports (stm32f7, stm32h7, nrf52840): the DWT
 * cycle counter when it runs, else SysTick extended to 32 bits. Only architectural Cortex-M
 * registers are used, so one file serves every Cortex-M3/M4/M7 part.
 *
 * ajpq_port_timer_init sets DEMCR.TRCENA, unlocks the DWT (LAR = 0xC5ACCE55: the Cortex-M7
 * ignores DWT writes until then; elsewhere the write is harmless) and sets
 * DWT_CTRL.CYCCNTENA, then reads CYCCNT around a few instructions. If it moved, ajpq_timer_now reads CYCCNT: source "dwt", one tick = one
 * core cycle. Otherwise SysTick runs from the core clock with reload 0xFFFFFF and counts its
 * wraps in SysTick_Handler: source "systick". On a real board that is real time too, one
 * tick = one core clock cycle (units per tick 1), not the instruction count "systick-icount"
 * means under QEMU. The fallback is not expected on this part; it is there so a part whose
 * DWT is absent or held by a debugger still gets a timer.
 */
#include "ajpq_port.h"

#define AJPQ_CORE_REG(address) (*(volatile uint32_t *)(address))
#define COREDEBUG_DEMCR AJPQ_CORE_REG(0xE000EDFCu)
#define COREDEBUG_DEMCR_TRCENA (1u << 24)
#define DWT_CTRL AJPQ_CORE_REG(0xE0001000u)
#define DWT_CYCCNT AJPQ_CORE_REG(0xE0001004u)
#define DWT_LAR AJPQ_CORE_REG(0xE0001FB0u)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_LAR_UNLOCK 0xC5ACCE55u
#define SYST_CSR AJPQ_CORE_REG(0xE000E010u)
#define SYST_RVR AJPQ_CORE_REG(0xE000E014u)
#define SYST_CVR AJPQ_CORE_REG(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CORE (1u << 2)
#define SCB_ICSR AJPQ_CORE_REG(0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_SHPR3 AJPQ_CORE_REG(0xE000ED20u)

#define SYST_RELOAD 0xFFFFFFu

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
    COREDEBUG_DEMCR |= COREDEBUG_DEMCR_TRCENA;
    DWT_LAR = DWT_LAR_UNLOCK;
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
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) { /* wrapped, SysTick_Handler not run yet */
        value = SYST_CVR;
        wraps++;
    }
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
    return (wraps << 24) | (SYST_RELOAD - value);
}

const char *ajpq_timer_source(void)
{
    return use_dwt ? "dwt" : "systick";
}

uint32_t ajpq_timer_units_per_tick(void)
{
    return 1u; /* "dwt" and "systick" both count core clock cycles */
}
