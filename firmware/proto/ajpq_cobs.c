/* ajpq_cobs.c - COBS encode and decode (see ajpq_cobs.h). */
#include "ajpq_cobs.h"

size_t ajpq_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t read = 0;
    size_t write = 1;
    size_t code_at = 0;
    uint8_t code = 1;
    if (cap == 0u) {
        return 0;
    }
    while (read < n) {
        if (in[read] == 0u) {
            out[code_at] = code;
            code = 1;
            code_at = write++;
            read++;
        } else {
            if (write >= cap) {
                return 0;
            }
            out[write++] = in[read++];
            code++;
            if (code == 0xFFu && read < n) {
                out[code_at] = code;
                code = 1;
                code_at = write++;
            }
        }
        if (code_at >= cap) {
            return 0;
        }
    }
    out[code_at] = code;
    return write;
}

int ajpq_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t read = 0;
    size_t write = 0;
    while (read < n) {
        uint8_t code = in[read++];
        if (code == 0u) {
            return -1;
        }
        for (uint8_t i = 1; i < code; i++) {
            if (read >= n || in[read] == 0u || write >= cap) {
                return -1;
            }
            out[write++] = in[read++];
        }
        if (code != 0xFFu && read < n) {
            if (write >= cap) {
                return -1;
            }
            out[write++] = 0;
        }
    }
    *out_len = write;
    return 0;
}
