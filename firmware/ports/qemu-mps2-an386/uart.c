/* uart.c - CMSDK APB UART0 of the mps2-an386 (0x40004000), polled. */
#include "ajpq_port.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))

#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u
#define CTRL_TX_ENABLE 0x1u
#define CTRL_RX_ENABLE 0x2u
#define SYSCLK_HZ 25000000u
#define BAUD_RATE 115200u

void ajpq_port_uart_init(void);

void ajpq_port_uart_init(void)
{
    UART_BAUDDIV = SYSCLK_HZ / BAUD_RATE; /* 217; the CMSDK minimum is 16 */
    UART_CTRL = CTRL_TX_ENABLE | CTRL_RX_ENABLE;
}

void ajpq_uart_write(const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (UART_STATE & STATE_TX_FULL) {
        }
        UART_DATA = data[i];
    }
}

int ajpq_uart_read_byte(void)
{
    while (!(UART_STATE & STATE_RX_FULL)) {
    }
    return (int)(UART_DATA & 0xFFu);
}
