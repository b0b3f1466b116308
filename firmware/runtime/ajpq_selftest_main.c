/* ajpq_selftest_main.c - firmware main that runs the model on images compiled into the
 * image (ajpq_test_inputs) and prints, per image, the output tensor and timer counts over
 * the UART as hex text, then exits. Needs no serial input: used by Artifact.run_selftest.
 *
 *   ajpq selftest <model hash> <timer source> <units per tick>
 *   o <8 hex digits per output value, two's complement>
 *   t <ticks for the whole inference>
 *   l <ticks per layer><decode ticks per layer>...
 *   done
 */
#include <stdint.h>

#include "ajpq_model.h"
#include "ajpq_port.h"

extern const uint32_t ajpq_test_input_count;
extern const uint8_t ajpq_test_inputs[]; /* image after image, uint8 CHW */

static int32_t output[AJPQ_MODEL_OUTPUT_ELEMENTS];

static void put_hex(uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t text[8];
    for (int i = 7; i >= 0; --i) {
        text[i] = (uint8_t)digits[value & 0xFu];
        value >>= 4;
    }
    ajpq_uart_write(text, sizeof text);
}

static void put_decimal(uint32_t value)
{
    uint8_t text[10];
    int n = 0;
    do {
        text[9 - n++] = (uint8_t)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    ajpq_uart_write(&text[10 - n], (size_t)n);
}

int main(void)
{
    ajpq_port_init();
    ajpq_model_clock = ajpq_timer_now;
    ajpq_uart_print("ajpq selftest " AJPQ_MODEL_HASH " ");
    ajpq_uart_print(ajpq_timer_source());
    ajpq_uart_print(" ");
    put_decimal(ajpq_timer_units_per_tick());
    ajpq_uart_print("\n");
    for (uint32_t i = 0; i < ajpq_test_input_count; ++i) {
        ajpq_model_set_input(&ajpq_test_inputs[i * AJPQ_MODEL_INPUT_ELEMENTS]);
        uint32_t start = ajpq_timer_now();
        ajpq_model_run();
        uint32_t end = ajpq_timer_now();
        ajpq_model_get_output(output);
        ajpq_uart_print("o ");
        for (uint32_t k = 0; k < AJPQ_MODEL_OUTPUT_ELEMENTS; ++k) {
            put_hex((uint32_t)output[k]);
        }
        ajpq_uart_print("\nt ");
        put_hex(end - start);
        ajpq_uart_print("\nl ");
        for (uint32_t k = 0; k < AJPQ_MODEL_LAYERS; ++k) {
            put_hex(ajpq_model_layer_ticks[k]);
            put_hex(ajpq_model_decode_ticks[k]);
        }
        ajpq_uart_print("\n");
    }
    ajpq_uart_print("done\n");
    ajpq_port_exit(0);
}
