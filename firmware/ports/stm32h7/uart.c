/* uart.c - USART3 of the NUCLEO-H743ZI, polled, 115200 8N1.
 *
 * USART3 is wired to the ST-LINK/V2-1 virtual COM port: TX on PD8, RX on PD9 (both AF7;
 * NUCLEO-144 user manual UM1974, "USART communication"). The USART kernel clock is rcc_pclk1
 * (RCC_D2CCIP2R.USART234578SEL = 000, its reset value) and PRESC is /1; ajpq_port_init leaves
 * the clock tree at the 64 MHz HSI, so with 16x oversampling
 * BRR = 64 MHz / 115200 = 555.6 -> 556 (115108 baud, -0.08 %).
 */
#include "ajpq_port.h"
#include "stm32h7_regs.h"

#define BAUD_RATE 115200u
#define USART_KERNEL_CLOCK_HZ STM32H7_HSI_HZ
#define TX_PIN 8u /* PD8 */
#define RX_PIN 9u /* PD9 */
#define AF_USART3 7u

void ajpq_port_uart_init(void);

static void pin_alternate(uint32_t port, uint32_t pin, uint32_t function)
{
    GPIO_MODER(port) = (GPIO_MODER(port) & ~(3u << (2u * pin))) | (GPIO_MODE_ALTERNATE << (2u * pin));
    GPIO_OTYPER(port) &= ~(1u << pin); /* push-pull */
    GPIO_OSPEEDR(port) = (GPIO_OSPEEDR(port) & ~(3u << (2u * pin))) | (GPIO_SPEED_HIGH << (2u * pin));
    GPIO_PUPDR(port) = (GPIO_PUPDR(port) & ~(3u << (2u * pin))) | (GPIO_PULL_UP << (2u * pin));
    if (pin < 8u) {
        GPIO_AFRL(port) = (GPIO_AFRL(port) & ~(0xFu << (4u * pin))) | (function << (4u * pin));
    } else {
        uint32_t shift = 4u * (pin - 8u);
        GPIO_AFRH(port) = (GPIO_AFRH(port) & ~(0xFu << shift)) | (function << shift);
    }
}

void ajpq_port_uart_init(void)
{
    RCC_AHB4ENR |= RCC_AHB4ENR_GPIODEN;
    RCC_APB1LENR |= RCC_APB1LENR_USART3EN;
    (void)RCC_APB1LENR; /* read back: the clock is on before the first USART access */
    RCC_D2CCIP2R &= ~RCC_D2CCIP2R_USART234578SEL_MASK;
    pin_alternate(GPIOD_BASE, TX_PIN, AF_USART3);
    pin_alternate(GPIOD_BASE, RX_PIN, AF_USART3);

    USART_CR1(USART3_BASE) = 0; /* disabled: 8 data bits, no parity, 16x oversampling */
    USART_CR2(USART3_BASE) = 0; /* 1 stop bit */
    USART_CR3(USART3_BASE) = 0; /* no flow control */
    USART_PRESC(USART3_BASE) = 0; /* kernel clock / 1 */
    USART_BRR(USART3_BASE) = (USART_KERNEL_CLOCK_HZ + BAUD_RATE / 2u) / BAUD_RATE;
    USART_CR1(USART3_BASE) = USART_CR1_TE | USART_CR1_RE | USART_CR1_UE;
}

void ajpq_uart_write(const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (!(USART_ISR(USART3_BASE) & USART_ISR_TXE)) {
        }
        USART_TDR(USART3_BASE) = data[i];
    }
}

int ajpq_uart_read_byte(void)
{
    for (;;) {
        uint32_t status = USART_ISR(USART3_BASE);
        if (status & (USART_ISR_ORE | USART_ISR_FE | USART_ISR_NF)) {
            /* an overrun stops reception until cleared; the byte in RDR is still valid */
            USART_ICR(USART3_BASE) = USART_ICR_CLEAR_ERRORS;
        }
        if (status & USART_ISR_RXNE) {
            return (int)(USART_RDR(USART3_BASE) & 0xFFu);
        }
    }
}
