/* fuzz_cobs.c - libFuzzer target: COBS and frame decoding of arbitrary bytes
 * (firmware/proto/ajpq_cobs.c, ajpq_frame.c, ajpq_crc.c), plus round trips: whatever
 * decodes re-encodes to the same bytes, and any bytes encode to a 0x00-free block that
 * decodes back to them. A broken property calls abort(). */
#include <stdlib.h>
#include <string.h>

#include "ajpq_cobs.h"
#include "ajpq_frame.h"

#define CAP 2048u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t decoded[CAP];
    static uint8_t encoded[AJPQ_COBS_MAX_ENCODED(CAP)];
    static uint8_t again[CAP];
    if (size == 0u || size > CAP) {
        return 0;
    }
    size_t n = 0;
    if (ajpq_cobs_decode(data, size, decoded, sizeof decoded, &n) == 0) {
        size_t m = ajpq_cobs_encode(decoded, n, encoded, sizeof encoded);
        size_t k = 0;
        if (m == 0u || memchr(encoded, 0, m) != NULL ||
            ajpq_cobs_decode(encoded, m, again, sizeof again, &k) != 0 || k != n ||
            memcmp(again, decoded, n) != 0) {
            abort();
        }
    }
    size_t m = ajpq_cobs_encode(data, size, encoded, sizeof encoded);
    size_t k = 0;
    if (m == 0u || m > AJPQ_COBS_MAX_ENCODED(size) || memchr(encoded, 0, m) != NULL ||
        ajpq_cobs_decode(encoded, m, again, sizeof again, &k) != 0 || k != size ||
        memcmp(again, data, size) != 0) {
        abort();
    }
    ajpq_frame frame;
    if (ajpq_frame_decode(data, size, &frame) == AJPQ_FRAME_OK) {
        if (frame.length > AJPQ_FRAME_MAX_BODY ||
            ajpq_frame_encode(&frame, encoded, sizeof encoded) == 0u) {
            abort();
        }
    }
    return 0;
}
