/* stm32f7_regs.h - the few STM32F746 and Cortex-M7 registers the stm32f7 port touches.
 *
 * Addresses and bit positions from ST RM0385 (STM32F75xxx/74xxx reference manual) and the
 * ARMv7-M Architecture Reference Manual; no vendor HAL or CMSIS header is needed.
 */
#ifndef AJPQ_STM32F7_REGS_H
#define AJPQ_STM32F7_REGS_H

#include <stdint.h>

#define AJPQ_REG(address) (*(volatile uint32_t *)(address))

/* Clock tree at reset: HSI RC oscillator, 16 MHz; AHB, APB1, APB2 prescalers /1. */
#define STM32F7_HSI_HZ 16000000u

/* RCC (RM0385 section 5.3), base 0x40023800. */
#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR AJPQ_REG(RCC_BASE + 0x30u)
#define RCC_APB2ENR AJPQ_REG(RCC_BASE + 0x44u)
#define RCC_DCKCFGR2 AJPQ_REG(RCC_BASE + 0x90u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_AHB1ENR_GPIOBEN (1u << 1)
#define RCC_APB2ENR_USART1EN (1u << 4)
#define RCC_DCKCFGR2_USART1SEL_MASK (3u << 0) /* 00 = PCLK2 (the reset value) */

/* GPIO ports (RM0385 section 6.4). */
#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(base) AJPQ_REG((base) + 0x00u)
#define GPIO_OTYPER(base) AJPQ_REG((base) + 0x04u)
#define GPIO_OSPEEDR(base) AJPQ_REG((base) + 0x08u)
#define GPIO_PUPDR(base) AJPQ_REG((base) + 0x0Cu)
#define GPIO_AFRL(base) AJPQ_REG((base) + 0x20u)
#define GPIO_AFRH(base) AJPQ_REG((base) + 0x24u)
#define GPIO_MODE_ALTERNATE 2u
#define GPIO_SPEED_HIGH 2u
#define GPIO_PULL_UP 1u

/* USART1 (RM0385 section 34.8), base 0x40011000. */
#define USART1_BASE 0x40011000u
#define USART_CR1(base) AJPQ_REG((base) + 0x00u)
#define USART_CR2(base) AJPQ_REG((base) + 0x04u)
#define USART_CR3(base) AJPQ_REG((base) + 0x08u)
#define USART_BRR(base) AJPQ_REG((base) + 0x0Cu)
#define USART_ISR(base) AJPQ_REG((base) + 0x1Cu)
#define USART_ICR(base) AJPQ_REG((base) + 0x20u)
#define USART_RDR(base) AJPQ_REG((base) + 0x24u)
#define USART_TDR(base) AJPQ_REG((base) + 0x28u)
#define USART_CR1_UE (1u << 0)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_ISR_FE (1u << 1)
#define USART_ISR_NF (1u << 2)
#define USART_ISR_ORE (1u << 3)
#define USART_ISR_RXNE (1u << 5)
#define USART_ISR_TXE (1u << 7)
#define USART_ICR_CLEAR_ERRORS ((1u << 1) | (1u << 2) | (1u << 3)) /* FECF, NCF, ORECF */

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

#endif /* AJPQ_STM32F7_REGS_H */
