/* stm32h7_regs.h - the few STM32H743 and Cortex-M7 registers the stm32h7 port touches.
 *
 * Addresses and bit positions from ST RM0433 (STM32H742/743/750/753 reference manual) and
 * the ARMv7-M Architecture Reference Manual; no vendor HAL or CMSIS header is needed.
 */
#ifndef AJPQ_STM32H7_REGS_H
#define AJPQ_STM32H7_REGS_H

#include <stdint.h>

#define AJPQ_REG(address) (*(volatile uint32_t *)(address))

/* Clock tree at reset: HSI RC oscillator, 64 MHz (RCC_CR.HSIDIV = /1); D1CPRE, HPRE and
 * D2PPRE1 /1, so the core, AHB and APB1 (rcc_pclk1) all run at 64 MHz. */
#define STM32H7_HSI_HZ 64000000u

/* RCC (RM0433 section 8.7), base 0x58024400. */
#define RCC_BASE 0x58024400u
#define RCC_D2CCIP2R AJPQ_REG(RCC_BASE + 0x054u)
#define RCC_AHB4ENR AJPQ_REG(RCC_BASE + 0x0E0u)
#define RCC_APB1LENR AJPQ_REG(RCC_BASE + 0x0E8u)
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_APB1LENR_USART3EN (1u << 18)
#define RCC_D2CCIP2R_USART234578SEL_MASK (7u << 0) /* 000 = rcc_pclk1 (the reset value) */

/* GPIO ports (RM0433 section 11.4). */
#define GPIOD_BASE 0x58020C00u
#define GPIO_MODER(base) AJPQ_REG((base) + 0x00u)
#define GPIO_OTYPER(base) AJPQ_REG((base) + 0x04u)
#define GPIO_OSPEEDR(base) AJPQ_REG((base) + 0x08u)
#define GPIO_PUPDR(base) AJPQ_REG((base) + 0x0Cu)
#define GPIO_AFRL(base) AJPQ_REG((base) + 0x20u)
#define GPIO_AFRH(base) AJPQ_REG((base) + 0x24u)
#define GPIO_MODE_ALTERNATE 2u
#define GPIO_SPEED_HIGH 2u
#define GPIO_PULL_UP 1u

/* USART3 (RM0433 section 48.7), base 0x40004800; FIFO mode off (CR1.FIFOEN = 0, reset). */
#define USART3_BASE 0x40004800u
#define USART_CR1(base) AJPQ_REG((base) + 0x00u)
#define USART_CR2(base) AJPQ_REG((base) + 0x04u)
#define USART_CR3(base) AJPQ_REG((base) + 0x08u)
#define USART_BRR(base) AJPQ_REG((base) + 0x0Cu)
#define USART_ISR(base) AJPQ_REG((base) + 0x1Cu)
#define USART_ICR(base) AJPQ_REG((base) + 0x20u)
#define USART_RDR(base) AJPQ_REG((base) + 0x24u)
#define USART_TDR(base) AJPQ_REG((base) + 0x28u)
#define USART_PRESC(base) AJPQ_REG((base) + 0x2Cu)
#define USART_CR1_UE (1u << 0)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_ISR_FE (1u << 1)
#define USART_ISR_NF (1u << 2)
#define USART_ISR_ORE (1u << 3)
#define USART_ISR_RXNE (1u << 5)
#define USART_ISR_TXE (1u << 7)
#define USART_ICR_CLEAR_ERRORS ((1u << 1) | (1u << 2) | (1u << 3)) /* FECF, NECF, ORECF */

/* Cortex-M7 system control block and debug (ARMv7-M ARM B3.2, C1.6). */
#define SCB_CCR AJPQ_REG(0xE000ED14u)
#define SCB_SHPR3 AJPQ_REG(0xE000ED20u)
#define SCB_CCSIDR AJPQ_REG(0xE000ED80u)
#define SCB_CSSELR AJPQ_REG(0xE000ED84u)
#define SCB_ICIALLU AJPQ_REG(0xE000EF50u)
#define SCB_DCISW AJPQ_REG(0xE000EF60u)
#define SCB_CCR_DC (1u << 16)
#define SCB_CCR_IC (1u << 17)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define COREDEBUG_DHCSR AJPQ_REG(0xE000EDF0u)
#define COREDEBUG_DHCSR_C_DEBUGEN (1u << 0)
#define COREDEBUG_DEMCR AJPQ_REG(0xE000EDFCu)
#define COREDEBUG_DEMCR_TRCENA (1u << 24)
#define DWT_CTRL AJPQ_REG(0xE0001000u)
#define DWT_CYCCNT AJPQ_REG(0xE0001004u)
#define DWT_LAR AJPQ_REG(0xE0001FB0u)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_LAR_UNLOCK 0xC5ACCE55u
#define SYST_CSR AJPQ_REG(0xE000E010u)
#define SYST_RVR AJPQ_REG(0xE000E014u)
#define SYST_CVR AJPQ_REG(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CORE (1u << 2)

#endif /* AJPQ_STM32H7_REGS_H */
