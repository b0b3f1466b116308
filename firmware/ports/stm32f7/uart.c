/* uart.c - USART1 of the STM32F746G-DISCO, polled, 115200 8N1.
 *
 * USART1 is wired to the ST-LINK/V2-1 virtual COM port: TX on PA9, RX on PB7 (both AF7;
 * PA10, the usual USART1_RX, is the USB OTG FS ID pin on this board - STM32F746G-DISCO user
 * manual UM1907, "Virtual COM port"). The USART kernel clock is PCLK2 (RCC_DCKCFGR2.USART1SEL
 * = 00, its reset value), which ajpq_port_init leaves at the 16 MHz HSI, so with 16x
 * oversampling BRR = 16 MHz / 115200 = 138.9 -> 139 (115108 baud, -0.08 %).
 */
#include "ajpq_port.h"
#include "stm32f7_regs.h"

#define BAUD_RATE 115200u
#define USART_KERNEL_CLOCK_HZ STM32F7_HSI_HZ
#define TX_PIN 9u /* PA9 */
#define RX_PIN 7u /* PB7 */
#define AF_USART1 7u

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
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN | RCC_AHB1ENR_GPIOBEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR; /* read back: the clock is on before the first USART access */
    RCC_DCKCFGR2 &= ~RCC_DCKCFGR2_USART1SEL_MASK;
    pin_alternate(GPIOA_BASE, TX_PIN, AF_USART1);
    pin_alternate(GPIOB_BASE, RX_PIN, AF_USART1);

    USART_CR1(USART1_BASE) = 0; /* disabled: 8 data bits, no parity, 16x oversampling */
    USART_CR2(USART1_BASE) = 0; /* 1 stop bit */
    USART_CR3(USART1_BASE) = 0; /* no flow control */
    USART_BRR(USART1_BASE) = (USART_KERNEL_CLOCK_HZ + BAUD_RATE / 2u) / BAUD_RATE;
    USART_CR1(USART1_BASE) = USART_CR1_TE | USART_CR1_RE | USART_CR1_UE;
}

void ajpq_uart_write(const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (!(USART_ISR(USART1_BASE) & USART_ISR_TXE)) {
        }
        USART_TDR(USART1_BASE) = data[i];
    }
}

int ajpq_uart_read_byte(void)
{
    for (;;) {
        uint32_t status = USART_ISR(USART1_BASE);
        if (status & (USART_ISR_ORE | USART_ISR_FE | USART_ISR_NF)) {
            /* an overrun stops reception until cleared; the byte in RDR is still valid */
            USART_ICR(USART1_BASE) = USART_ICR_CLEAR_ERRORS;
        }
        if (status & USART_ISR_RXNE) {
            return (int)(USART_RDR(USART1_BASE) & 0xFFu);
        }
    }
}
