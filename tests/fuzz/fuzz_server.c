/* fuzz_server.c - libFuzzer target: the server firmware's UART path, from raw bytes to the
 * replies it writes (firmware/runtime/ajpq_server_main.c, the real COBS, CRC, frame, text
 * and dispatch code; ajpq_verify.c and the Huffman decoder check a small stand-in model).
 * Only the UART, the timer, exit and the model's run are stubbed.
 *
 * The first input byte chooses how the rest reaches the UART:
 *   bits 0-1: 0 or 3 raw bytes; 1 frames (records [length][seq][cmd][body], each sent as a
 *             valid 0x00 COBS 0x00 frame, so the fuzzer reaches every command); 2 text
 *             (records split at '\n', each sent as a command ending in '%');
 *   bit 2:    corrupt a weight byte in flash (the boot check must refuse the model);
 *   bit 3:    a weight stream ends early in every run (ajpq_model_faults).
 * In frames mode every reply must decode as a well-formed reply frame (cmd bit 7 set, a
 * status byte) or a NAK, or abort().
 * Built with -DAJPQ_FUZZ_TEXT it is the fuzz_text target: every input goes in as text.
 */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "ajpq_crc.h"
#include "ajpq_frame.h"
#include "ajpq_huffman.h"
#include "ajpq_model.h"
#include "ajpq_port.h"
#include "ajpq_verify.h"

#define main ajpq_server_main
#include "ajpq_server_main.c"
#undef main

/* ---- the stand-in model: one real Huffman table and stream --------------------------- */
static uint16_t lookup[4] = {0x0100u, 0x0100u, 0x0201u, 0x02FFu}; /* 0: 0, 10: 1, 11: -1 */
static int8_t symbols[3] = {0, 1, -1};
static uint16_t first_code[3] = {0u, 0u, 2u};
static uint16_t counts[3] = {0u, 1u, 2u};
static uint16_t first_index[3] = {0u, 0u, 1u};
static const ajpq_huffman_table_t table = {3u, 2u, 2u, lookup, symbols, first_code, counts,
                                           first_index};
static uint8_t stream[6] = {0x5Bu, 0x00u, 0u, 0u, 0u, 0u}; /* 0 10 11 0 11 0.. */
const ajpq_blob_t ajpq_model_blobs[] = {
    {stream, sizeof stream},       {lookup, sizeof lookup},           {symbols, sizeof symbols},
    {first_code, sizeof first_code}, {counts, sizeof counts}, {first_index, sizeof first_index},
};
const uint32_t ajpq_model_blob_count = 6u;
const ajpq_huffman_table_t *const ajpq_model_tables[] = {&table};
const uint32_t ajpq_model_table_count = 1u;

uint32_t ajpq_fuzz_weights_crc;
uint32_t (*ajpq_model_clock)(void);
uint32_t ajpq_model_layer_ticks[AJPQ_MODEL_LAYERS];
uint32_t ajpq_model_decode_ticks[AJPQ_MODEL_LAYERS];
uint32_t ajpq_model_faults;
static int8_t weights[8];
static int fault_runs;

void ajpq_model_set_input(const uint8_t *pixels)
{
    (void)pixels;
}

void ajpq_model_run(void)
{
    if (ajpq_huffman_decode(&table, stream, sizeof stream, sizeof weights, weights) != 0 ||
        fault_runs) {
        ajpq_model_faults++;
    }
}

void ajpq_model_get_output(int32_t *out)
{
    for (uint32_t i = 0; i < AJPQ_MODEL_OUTPUT_ELEMENTS; ++i) {
        out[i] = weights[i % sizeof weights];
    }
}

/* ---- the port: UART from the fuzz input, replies into a buffer ----------------------- */
static jmp_buf done;
static const uint8_t *uart_in;
static size_t uart_left;
static uint8_t uart_out[1u << 16];
static size_t uart_out_length;
static uint32_t clock_now;

void ajpq_port_init(void) {}

int ajpq_uart_read_byte(void)
{
    if (uart_left == 0u) {
        longjmp(done, 1); /* the input is used up: the server would wait forever */
    }
    uart_left--;
    return *uart_in++;
}

void ajpq_uart_write(const uint8_t *data, size_t n)
{
    size_t room = sizeof uart_out - uart_out_length;
    n = n < room ? n : room;
    memcpy(&uart_out[uart_out_length], data, n);
    uart_out_length += n;
}

uint32_t ajpq_timer_now(void)
{
    return clock_now += 7u;
}

const char *ajpq_timer_source(void)
{
    return "fuzz";
}

uint32_t ajpq_timer_units_per_tick(void)
{
    return 1u;
}

void ajpq_port_exit(int code)
{
    longjmp(done, 2 + code);
}

/* ---- building what the UART receives -------------------------------------------------- */
static uint8_t wire[1u << 17];

static size_t put_frame(size_t at, uint8_t seq, uint8_t cmd, const uint8_t *body, size_t n)
{
    ajpq_frame frame;
    frame.seq = seq;
    frame.cmd = cmd;
    frame.length = n;
    memcpy(frame.body, body, n);
    if (at + AJPQ_FRAME_MAX_ENCODED + 2u > sizeof wire) {
        return at;
    }
    wire[at] = 0u;
    size_t encoded = ajpq_frame_encode(&frame, &wire[at + 1u], AJPQ_FRAME_MAX_ENCODED);
    wire[at + 1u + encoded] = 0u;
    return at + encoded + 2u;
}

static size_t frames(const uint8_t *data, size_t size)
{
    size_t at = 0;
    while (size >= 3u) {
        size_t n = data[0] < size - 3u ? data[0] : size - 3u;
        n = n < AJPQ_FRAME_MAX_BODY ? n : AJPQ_FRAME_MAX_BODY;
        at = put_frame(at, data[1], data[2], &data[3], n);
        data += 3u + n;
        size -= 3u + n;
    }
    return at;
}

static size_t text_commands(const uint8_t *data, size_t size)
{
    size_t at = 0;
    for (size_t i = 0; i < size && at + 2u < sizeof wire; ++i) {
        wire[at++] = data[i] == '\n' ? (uint8_t)'%' : data[i];
    }
    wire[at++] = '%';
    return at;
}

/* Every reply in frames mode is a well-formed frame: a reply (cmd bit 7) or a NAK. */
static void check_replies(void)
{
    size_t start = 0;
    for (size_t i = 0; i < uart_out_length; ++i) {
        if (uart_out[i] != 0u) {
            continue;
        }
        if (i > start) {
            ajpq_frame reply;
            if (ajpq_frame_decode(&uart_out[start], i - start, &reply) != AJPQ_FRAME_OK ||
                (reply.cmd & AJPQ_REPLY) == 0u || reply.length == 0u) {
                abort();
            }
        }
        start = i + 1u;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0u) {
        return 0;
    }
    static int ready;
    if (!ready) {
        ajpq_fuzz_weights_crc = ajpq_model_weights_crc();
        ready = 1;
    }
    uint8_t mode = data[0];
#ifdef AJPQ_FUZZ_TEXT /* the fuzz_text target: the EEMBC text-mode parser only */
    mode = (uint8_t)((mode & ~3u) | 2u);
#endif
    size_t n = size - 1u;
    if ((mode & 3u) == 1u) {
        n = frames(&data[1], n);
        uart_in = wire;
    } else if ((mode & 3u) == 2u) {
        n = text_commands(&data[1], n);
        uart_in = wire;
    } else {
        uart_in = &data[1];
    }
    uart_left = n;
    uart_out_length = 0;
    ajpq_model_faults = 0;
    fault_runs = (mode & 8u) != 0u;
    if (mode & 4u) {
        stream[1] ^= 0x40u;
    }
    if (setjmp(done) == 0) {
        ajpq_server_main();
    }
    if (mode & 4u) {
        stream[1] ^= 0x40u;
    }
    if ((mode & 3u) == 1u) {
        check_replies();
    }
    return 0;
}
