/* uart.c - UARTE0 of the nRF52840-DK, polled through EasyDMA, 115200 8N1, no flow control.
 *
 * The DK wires UARTE0 to the J-Link OB virtual COM port: TX on P0.06, RX on P0.08 (RTS P0.05
 * and CTS P0.07 are left unconnected; the interface MCU does not require them). The UARTE
 * baud generator runs from the 16 MHz peripheral clock derived from HFCLK, so the
 * BAUDRATE value 0x01D7E000 (115108 baud, -0.08 %) does not depend on the CPU clock choice;
 * its accuracy does: ajpq_port_init starts the crystal (see port.c).
 * EasyDMA reads and writes RAM only, so writes are copied through a RAM buffer (the data may
 * be in flash) and reads land in a one-byte RAM buffer. Reception is armed at init and
 * re-armed after each byte; a byte that arrives while no read is pending waits in the
 * UARTE's small RX FIFO, so a host should send no more than a few bytes ahead of the reads.
 */
#include "ajpq_port.h"
#include "nrf52840_regs.h"

#define TX_PIN 6u /* P0.06 */
#define RX_PIN 8u /* P0.08 */
#define TX_CHUNK 64u

void ajpq_port_uart_init(void);

static uint8_t tx_buffer[TX_CHUNK];
static volatile uint8_t rx_byte;

static void start_receive(void)
{
    UARTE_RXD_PTR = (uint32_t)(uintptr_t)&rx_byte;
    UARTE_RXD_MAXCNT = 1;
    UARTE_EVENTS_ENDRX = 0;
    UARTE_TASKS_STARTRX = 1;
}

void ajpq_port_uart_init(void)
{
    P0_OUTSET = 1u << TX_PIN; /* idle high before the pin becomes an output */
    P0_PIN_CNF(TX_PIN) = PIN_CNF_DIR_OUTPUT | PIN_CNF_INPUT_DISCONNECT;
    P0_PIN_CNF(RX_PIN) = PIN_CNF_PULL_UP; /* input, connected; held high when unplugged */

    UARTE_ENABLE = 0;
    UARTE_INTEN = 0;
    UARTE_SHORTS = 0;
    UARTE_PSEL_TXD = TX_PIN; /* port 0, CONNECT bit 31 = 0 */
    UARTE_PSEL_RXD = RX_PIN;
    UARTE_PSEL_RTS = UARTE_PSEL_DISCONNECTED;
    UARTE_PSEL_CTS = UARTE_PSEL_DISCONNECTED;
    UARTE_CONFIG = 0; /* no hardware flow control, no parity, one stop bit */
    UARTE_BAUDRATE = UARTE_BAUDRATE_115200;
    UARTE_ERRORSRC = UARTE_ERRORSRC; /* write 1 to clear */
    UARTE_EVENTS_ERROR = 0;
    UARTE_ENABLE = UARTE_ENABLE_ENABLED;
    start_receive();
}

void ajpq_uart_write(const uint8_t *data, size_t n)
{
    while (n > 0) {
        size_t chunk = n < TX_CHUNK ? n : TX_CHUNK;
        for (size_t i = 0; i < chunk; i++) {
            tx_buffer[i] = data[i];
        }
        UARTE_TXD_PTR = (uint32_t)(uintptr_t)tx_buffer;
        UARTE_TXD_MAXCNT = (uint32_t)chunk;
        UARTE_EVENTS_ENDTX = 0;
        __asm volatile("dsb" ::: "memory"); /* the buffer is written before EasyDMA reads it */
        UARTE_TASKS_STARTTX = 1;
        while (UARTE_EVENTS_ENDTX == 0) {
        }
        UARTE_EVENTS_ENDTX = 0;
        data += chunk;
        n -= chunk;
    }
}

int ajpq_uart_read_byte(void)
{
    while (UARTE_EVENTS_ENDRX == 0) {
        if (UARTE_EVENTS_ERROR != 0) { /* framing, parity, overrun, break: drop the flags */
            UARTE_ERRORSRC = UARTE_ERRORSRC;
            UARTE_EVENTS_ERROR = 0;
        }
    }
    __asm volatile("dsb" ::: "memory");
    int value = rx_byte;
    start_receive();
    return value;
}
