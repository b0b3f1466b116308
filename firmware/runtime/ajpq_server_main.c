/* ajpq_server_main.c - the deployable firmware main: serves the model over the serial port
 * forever, in two protocols told apart by the first byte of a command (docs/protocol.md):
 *
 *  - binary frames 0x00 <COBS([seq][cmd][payload][crc16])> 0x00 (ajpq_frame.h): INFO,
 *    LOAD_INPUT, RUN, READ_OUTPUT, READ_LAYERS, QUIT; a damaged frame is answered with NAK
 *    so the host retries, and a repeated request (same seq, cmd, length, CRC-16 and CRC-32
 *    of the body) gets the cached reply without running again;
 *  - MLPerf Tiny / EEMBC runner text commands ending in '%': name, profile, db load N,
 *    db <hex>, infer N W; every reply line ends "\r\n" and every command ends with m-ready.
 *
 * At boot the model's weights and Huffman tables are checked against the CRC ajpq wrote
 * (ajpq_verify.h); INFO reports the result, and a model that failed is not run (RUN answers
 * AJPQ_STATUS_BAD_MODEL, infer m-error-model-failed-verification).
 *
 * The UART is not read while the model runs: RUN (at most 65,535 + 65,535 inferences) and
 * infer (the same bounds) finish before the next byte is looked at. Only QUIT ends the
 * program (ajpq_port_exit(0): QEMU exits; a real board spins until it is reset).
 */
#include <stdint.h>
#include <string.h>

#include "ajpq_crc.h"
#include "ajpq_frame.h"
#include "ajpq_model.h"
#include "ajpq_port.h"
#include "ajpq_text.h"
#include "ajpq_verify.h"

#ifndef AJPQ_BOARD
#define AJPQ_BOARD "unknown"
#endif
#define AJPQ_SERVER_VERSION "0.1.0"
#define TEXT_MAX 1100u
#define RUN_MAX 0xFFFFu /* the most inferences (and warmups) one RUN or infer does */

static uint8_t input[AJPQ_MODEL_INPUT_ELEMENTS];
static int32_t output[AJPQ_MODEL_OUTPUT_ELEMENTS];
static uint8_t rx[AJPQ_FRAME_MAX_ENCODED];
static uint8_t tx[AJPQ_FRAME_MAX_ENCODED + 2u];
static size_t tx_length;
static ajpq_frame request;
static ajpq_frame reply;
static int have_cached;
static uint8_t cached_seq;
static uint8_t cached_cmd;
static uint16_t cached_crc;
static size_t cached_length;
static uint32_t cached_body_crc;
static uint32_t model_status; /* AJPQ_MODEL_VERIFIED or why not (ajpq_verify.h) */
static uint32_t model_crc;    /* the weights CRC computed at boot */
static char text[TEXT_MAX + 1u];
static uint32_t db_expected;
static uint32_t db_count;

typedef struct {
    uint64_t total;
    uint32_t min;
    uint32_t max;
} run_stats;

/* Under QEMU -icount the instruction stream after a command is deterministic, but where it
 * starts relative to the 40-instruction SysTick grid depends on how long the UART was polled
 * (host time), so counts would jitter by one tick. Sleeping until the SysTick wrap interrupt
 * (the port's SysTick_Handler, which "systick-icount" guarantees) puts the start on the grid:
 * every measurement then reads the same ticks. A DWT cycle counter needs no alignment. */
static void align_to_timer(void)
{
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
    if (strcmp(ajpq_timer_source(), "systick-icount") == 0) {
        __asm volatile("dsb\n\twfi" ::: "memory");
    }
#endif
}

/* Run warmup + count inferences on the input buffer; times only ajpq_model_run. */
static run_stats run_inferences(uint32_t count, uint32_t warmup)
{
    run_stats stats = {0u, UINT32_MAX, 0u};
    for (uint32_t i = 0; i < warmup + count; i++) {
        align_to_timer(); /* every run starts on the grid: equal runs read equal ticks */
        ajpq_model_set_input(input); /* (and past the wrap: SysTick has reloaded) */
        uint32_t start = ajpq_timer_now();
        ajpq_model_run();
        uint32_t ticks = ajpq_timer_now() - start;
        if (i >= warmup) {
            stats.total += ticks;
            stats.min = ticks < stats.min ? ticks : stats.min;
            stats.max = ticks > stats.max ? ticks : stats.max;
        }
    }
    ajpq_model_get_output(output);
    return stats;
}

/* ---- binary frames ---------------------------------------------------------------- */

static void put_string(const char *value)
{
    size_t n = strlen(value);
    n = n > 64u ? 64u : n;
    reply.body[reply.length++] = (uint8_t)n;
    memcpy(&reply.body[reply.length], value, n);
    reply.length += n;
}

static uint8_t handle_info(void)
{
    uint8_t *p = &reply.body[1];
    ajpq_put_u16(&p[0], AJPQ_PROTOCOL_VERSION);
    ajpq_put_u32(&p[2], ajpq_timer_units_per_tick());
    ajpq_put_u32(&p[6], AJPQ_MODEL_INPUT_ELEMENTS);
    ajpq_put_u32(&p[10], AJPQ_MODEL_OUTPUT_ELEMENTS);
    ajpq_put_u16(&p[14], (uint16_t)AJPQ_MODEL_LAYERS);
    ajpq_put_u16(&p[16], (uint16_t)AJPQ_FRAME_MAX_BODY);
    reply.length = 19u;
    put_string(AJPQ_SERVER_VERSION);
    put_string(AJPQ_MODEL_HASH);
    put_string(AJPQ_BOARD);
    put_string(ajpq_timer_source());
    ajpq_put_u32(&reply.body[reply.length], model_crc);
    ajpq_put_u32(&reply.body[reply.length + 4u], AJPQ_MODEL_WEIGHTS_CRC);
    reply.body[reply.length + 8u] = (uint8_t)model_status;
    reply.length += 9u;
    return AJPQ_STATUS_OK;
}

static uint8_t handle_load_input(void)
{
    if (request.length < 4u || request.length > 4u + AJPQ_MAX_INPUT_CHUNK) {
        return AJPQ_STATUS_BAD_LENGTH;
    }
    uint32_t offset = ajpq_get_u32(request.body);
    uint32_t count = (uint32_t)(request.length - 4u);
    if (offset > AJPQ_MODEL_INPUT_ELEMENTS || count > AJPQ_MODEL_INPUT_ELEMENTS - offset) {
        return AJPQ_STATUS_BAD_ARGUMENT;
    }
    memcpy(&input[offset], &request.body[4], count);
    return AJPQ_STATUS_OK;
}

static uint8_t handle_run(void)
{
    if (request.length != 4u) {
        return AJPQ_STATUS_BAD_LENGTH;
    }
    uint16_t count = ajpq_get_u16(&request.body[0]);
    uint16_t warmup = ajpq_get_u16(&request.body[2]);
    if (count == 0u) {
        return AJPQ_STATUS_BAD_ARGUMENT;
    }
    if (model_status != AJPQ_MODEL_VERIFIED) {
        return AJPQ_STATUS_BAD_MODEL;
    }
    run_stats stats = run_inferences(count, warmup);
    if (ajpq_model_faults != 0u) {
        model_status = AJPQ_MODEL_BAD_RUN;
        return AJPQ_STATUS_BAD_MODEL;
    }
    uint8_t *p = &reply.body[1];
    ajpq_put_u32(&p[0], (uint32_t)(stats.total & 0xFFFFFFFFu));
    ajpq_put_u32(&p[4], (uint32_t)(stats.total >> 32));
    ajpq_put_u32(&p[8], stats.min);
    ajpq_put_u32(&p[12], stats.max);
    reply.length = 17u;
    return AJPQ_STATUS_OK;
}

/* READ_OUTPUT (offset u32, count u16) and READ_LAYERS (first u16, count u16). */
static uint8_t handle_read(uint32_t total, uint32_t limit, int layers)
{
    size_t expected = layers ? 4u : 6u;
    if (request.length != expected) {
        return AJPQ_STATUS_BAD_LENGTH;
    }
    uint32_t first = layers ? ajpq_get_u16(request.body) : ajpq_get_u32(request.body);
    uint32_t count = ajpq_get_u16(&request.body[expected - 2u]);
    if (count > limit || first > total || count > total - first) {
        return AJPQ_STATUS_BAD_ARGUMENT;
    }
    reply.length = 1u;
    for (uint32_t i = first; i < first + count; i++) {
        if (layers) {
            ajpq_put_u32(&reply.body[reply.length], ajpq_model_layer_ticks[i]);
            ajpq_put_u32(&reply.body[reply.length + 4u], ajpq_model_decode_ticks[i]);
            reply.length += 8u;
        } else {
            ajpq_put_u32(&reply.body[reply.length], (uint32_t)output[i]);
            reply.length += 4u;
        }
    }
    return AJPQ_STATUS_OK;
}

/* Requests are 0x01..0x7E: their replies (cmd | 0x80) never read as a NAK (0xFF). */
static int is_request(uint8_t cmd)
{
    return cmd >= 0x01u && cmd <= 0x7Eu;
}

static uint8_t dispatch(void)
{
    switch (request.cmd) {
    case AJPQ_CMD_INFO:
        return handle_info();
    case AJPQ_CMD_LOAD_INPUT:
        return handle_load_input();
    case AJPQ_CMD_RUN:
        return handle_run();
    case AJPQ_CMD_READ_OUTPUT:
        return handle_read(AJPQ_MODEL_OUTPUT_ELEMENTS, AJPQ_MAX_OUTPUT_VALUES, 0);
    case AJPQ_CMD_READ_LAYERS:
        return handle_read(AJPQ_MODEL_LAYERS, AJPQ_MAX_LAYER_ENTRIES, 1);
    case AJPQ_CMD_QUIT:
        return AJPQ_STATUS_OK;
    default:
        return AJPQ_STATUS_UNKNOWN_COMMAND;
    }
}

/* Encode `reply` into tx (0x00 <cobs> 0x00) and send it. */
static void send_reply(void)
{
    size_t n = ajpq_frame_encode(&reply, &tx[1], sizeof tx - 2u);
    tx[0] = 0u;
    tx[n + 1u] = 0u;
    tx_length = n + 2u;
    ajpq_uart_write(tx, tx_length);
}

static void send_nak(uint8_t seq)
{
    reply.seq = seq;
    reply.cmd = AJPQ_CMD_NAK;
    reply.body[0] = AJPQ_STATUS_BAD_FRAME;
    reply.length = 1u;
    send_reply();
    have_cached = 0;
}

static void serve_frame(size_t n)
{
    int result = ajpq_frame_decode(rx, n, &request);
    if (result != AJPQ_FRAME_OK) {
        send_nak(result == AJPQ_FRAME_BAD_CRC ? request.seq : 0u);
        return;
    }
    uint32_t body_crc = ajpq_crc32_update(AJPQ_CRC32_INIT, request.body, request.length);
    if (have_cached && request.seq == cached_seq && request.cmd == cached_cmd &&
        request.crc == cached_crc && request.length == cached_length &&
        body_crc == cached_body_crc) {
        ajpq_uart_write(tx, tx_length); /* a retry: the reply was lost, not the request */
        return;
    }
    reply.length = 1u;
    reply.body[0] = dispatch();
    if (reply.body[0] != AJPQ_STATUS_OK) {
        reply.length = 1u;
    }
    reply.seq = request.seq;
    reply.cmd = is_request(request.cmd) ? (uint8_t)(request.cmd | AJPQ_REPLY) : AJPQ_REPLY;
    send_reply();
    have_cached = 1;
    cached_seq = request.seq;
    cached_cmd = request.cmd;
    cached_crc = request.crc;
    cached_length = request.length;
    cached_body_crc = body_crc;
    if (request.cmd == AJPQ_CMD_QUIT && reply.body[0] == AJPQ_STATUS_OK) {
        ajpq_port_exit(0);
    }
}

/* Called after a 0x00: read up to the closing 0x00 (empty frames are skipped). */
static void receive_frame(void)
{
    size_t n = 0;
    int overflow = 0;
    for (;;) {
        uint8_t byte = (uint8_t)ajpq_uart_read_byte();
        if (byte == 0u) {
            if (n == 0u && !overflow) {
                continue;
            }
            break;
        }
        if (n < sizeof rx) {
            rx[n++] = byte;
        } else {
            overflow = 1;
        }
    }
    if (overflow) {
        send_nak(0u);
    } else {
        serve_frame(n);
    }
}

/* ---- EEMBC text mode ---------------------------------------------------------------- */

static void text_db_load(const char *arguments)
{
    uint32_t count = 0;
    if (!ajpq_text_parse_u32(&arguments, &count) || count > AJPQ_MODEL_INPUT_ELEMENTS) {
        ajpq_uart_print("m-error-db-load-needs-at-most-");
        ajpq_text_put_u32(AJPQ_MODEL_INPUT_ELEMENTS);
        ajpq_uart_print("-bytes\r\n");
        return;
    }
    db_expected = count;
    db_count = 0;
    ajpq_uart_print("m-[Expecting ");
    ajpq_text_put_u32(count);
    ajpq_uart_print(" bytes]\r\n");
}

static void text_db_data(const char *hex)
{
    size_t n = strlen(hex);
    if (n % 2u != 0u || n / 2u > db_expected - db_count) {
        ajpq_uart_print("m-error-db-bad-length\r\n");
        return;
    }
    for (size_t i = 0; i < n; ++i) { /* all or nothing: check every digit first */
        if (ajpq_text_hex_value(hex[i]) < 0) {
            ajpq_uart_print("m-error-db-bad-hex\r\n");
            return;
        }
    }
    for (size_t i = 0; i < n; i += 2u) {
        int high = ajpq_text_hex_value(hex[i]);
        int low = ajpq_text_hex_value(hex[i + 1u]);
        input[db_count++] = (uint8_t)(high * 16 + low);
    }
    if (db_count == db_expected) {
        ajpq_uart_print("m-load-done\r\n");
    }
}

static void text_infer(const char *arguments)
{
    uint32_t count = 0;
    uint32_t warmup = 0;
    if (!ajpq_text_parse_u32(&arguments, &count) || count == 0u || count > RUN_MAX) {
        ajpq_uart_print("m-error-infer-needs-a-count-of-1-to-65535\r\n");
        return;
    }
    if (!ajpq_text_parse_u32(&arguments, &warmup)) {
        warmup = 0;
    }
    if (warmup > RUN_MAX) {
        ajpq_uart_print("m-error-infer-warmup-over-65535\r\n");
        return;
    }
    if (model_status != AJPQ_MODEL_VERIFIED) {
        ajpq_uart_print("m-error-model-failed-verification\r\n");
        return;
    }
    align_to_timer();
    ajpq_uart_print("m-warmup-start-");
    ajpq_text_put_u32(warmup);
    ajpq_uart_print("\r\n");
    (void)run_inferences(0u, warmup);
    ajpq_uart_print("m-warmup-done\r\nm-infer-start-");
    ajpq_text_put_u32(count);
    ajpq_uart_print("\r\n");
    uint32_t start = ajpq_timer_now();
    for (uint32_t i = 0; i < count; i++) {
        ajpq_model_set_input(input);
        ajpq_model_run();
    }
    uint32_t end = ajpq_timer_now();
    ajpq_model_get_output(output);
    if (ajpq_model_faults != 0u) {
        model_status = AJPQ_MODEL_BAD_RUN;
        ajpq_uart_print("m-error-weight-stream-ended-early\r\n");
        return;
    }
    ajpq_uart_print("m-lap-us-");
    ajpq_text_put_u32(start);
    ajpq_uart_print("\r\nm-lap-us-");
    ajpq_text_put_u32(end);
    ajpq_uart_print("\r\nm-infer-done\r\nm-results-[");
    for (uint32_t k = 0; k < AJPQ_MODEL_OUTPUT_ELEMENTS; k++) {
        if (k > 0u) {
            ajpq_uart_print(",");
        }
        ajpq_text_put_i32(output[k]);
    }
    ajpq_uart_print("]\r\n");
}

static void serve_text(void)
{
    if (strcmp(text, "name") == 0) {
        ajpq_uart_print("m-name-ajpq-" AJPQ_MODEL_HASH "\r\n");
    } else if (strcmp(text, "profile") == 0) {
        ajpq_uart_print("m-profile-[ajpq " AJPQ_SERVER_VERSION "]\r\nm-model-[" AJPQ_MODEL_HASH
                        "]\r\nm-board-[" AJPQ_BOARD "]\r\nm-timer-[");
        ajpq_uart_print(ajpq_timer_source());
        ajpq_uart_print(",");
        ajpq_text_put_u32(ajpq_timer_units_per_tick());
        ajpq_uart_print("]\r\n");
    } else if (strncmp(text, "db load ", 8u) == 0) {
        text_db_load(&text[8]);
    } else if (strncmp(text, "db ", 3u) == 0) {
        text_db_data(&text[3]);
    } else if (strncmp(text, "infer", 5u) == 0 && (text[5] == ' ' || text[5] == '\0')) {
        text_infer(&text[5]);
    } else {
        ajpq_uart_print("m-error-unknown-command\r\n");
    }
    ajpq_uart_print("m-ready\r\n");
}

int main(void)
{
    size_t text_length = 0;
    int text_overflow = 0;
    ajpq_port_init();
    have_cached = 0;
    db_expected = 0;
    db_count = 0;
    model_status = ajpq_model_verify(AJPQ_MODEL_WEIGHTS_CRC, &model_crc);
    ajpq_model_clock = ajpq_timer_now;
    for (;;) {
        uint8_t byte = (uint8_t)ajpq_uart_read_byte();
        if (byte == 0u) {
            text_length = 0;
            text_overflow = 0;
            receive_frame();
        } else if (byte == '%') {
            text[text_length] = '\0';
            if (text_overflow) {
                ajpq_uart_print("m-error-command-too-long\r\nm-ready\r\n");
            } else {
                serve_text();
            }
            text_length = 0;
            text_overflow = 0;
        } else if (byte >= 0x20u && byte < 0x7Fu) {
            if (text_length < TEXT_MAX) {
                text[text_length++] = (char)byte;
            } else {
                text_overflow = 1;
            }
        }
    }
}
