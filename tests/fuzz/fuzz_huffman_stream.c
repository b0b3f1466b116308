/* fuzz_huffman_stream.c - libFuzzer target: the Huffman decoder on arbitrary streams with
 * valid tables (firmware/runtime/ajpq_huffman.c).
 *
 * The input's first byte gives the number of symbols (1..256) and lookup_bits; the next
 * bytes their code lengths (1..16, lengthened until Kraft's sum is at most 1). The harness
 * builds the canonical table as huffman.py does, which ajpq_huffman_validate must accept;
 * it encodes the following bytes as symbols and the decoder must give them back; then it
 * decodes the rest of the input as a stream. A broken property calls abort(). */
#include <stdlib.h>
#include <string.h>

#include "ajpq_huffman.h"

#define MAX_LENGTH AJPQ_HUFFMAN_MAX_CODE_LENGTH
#define MESSAGE 64u

typedef struct {
    uint8_t length[256]; /* per symbol index */
    uint16_t code[256];
    int8_t symbols[256];
    uint16_t lookup[1u << 8];
    uint16_t first_code[MAX_LENGTH + 1];
    uint16_t count[MAX_LENGTH + 1];
    uint16_t first_index[MAX_LENGTH + 1];
    ajpq_huffman_table_t table;
} code_t;

/* Lengths from the input, made prefix-free by lengthening the shortest codes: every
 * code of the shortest length grows by one bit until Kraft's sum is at most 1. */
static void choose_lengths(code_t *c, size_t n, const uint8_t *data)
{
    uint32_t kraft = 0; /* in units of 2^-16 */
    uint32_t per_length[MAX_LENGTH + 2] = {0};
    for (size_t i = 0; i < n; ++i) {
        c->length[i] = (uint8_t)(1u + data[i] % MAX_LENGTH);
        per_length[c->length[i]]++;
        kraft += 1u << (MAX_LENGTH - c->length[i]);
    }
    for (uint8_t shortest = 1; kraft > (1u << MAX_LENGTH); ++shortest) {
        kraft -= per_length[shortest] << (MAX_LENGTH - shortest - 1u);
        per_length[shortest + 1] += per_length[shortest];
        per_length[shortest] = 0;
        for (size_t i = 0; i < n; ++i) {
            c->length[i] = (uint8_t)(c->length[i] == shortest ? shortest + 1u : c->length[i]);
        }
    }
}

/* The canonical code: symbols by (length, index); symbol index i is the int8 i - 128. */
static void build(code_t *c, size_t n, uint8_t lookup_bits)
{
    uint8_t max_length = 1;
    size_t at = 0;
    memset(c->count, 0, sizeof c->count);
    for (size_t i = 0; i < n; ++i) {
        max_length = c->length[i] > max_length ? c->length[i] : max_length;
    }
    uint32_t next = 0;
    for (uint8_t length = 1; length <= max_length; ++length) {
        c->first_code[length] = (uint16_t)next;
        c->first_index[length] = (uint16_t)at;
        for (size_t i = 0; i < n; ++i) {
            if (c->length[i] == length) {
                c->code[i] = (uint16_t)next++;
                c->symbols[at++] = (int8_t)((int)i - 128);
                c->count[length]++;
            }
        }
        next <<= 1;
    }
    c->first_code[0] = c->count[0] = c->first_index[0] = 0;
    lookup_bits = (uint8_t)(1u + lookup_bits % max_length);
    lookup_bits = lookup_bits > 8u ? 8u : lookup_bits;
    memset(c->lookup, 0, sizeof c->lookup);
    for (size_t i = 0; i < n; ++i) {
        if (c->length[i] <= lookup_bits) {
            uint32_t first = (uint32_t)c->code[i] << (lookup_bits - c->length[i]);
            for (uint32_t k = 0; k < (1u << (lookup_bits - c->length[i])); ++k) {
                c->lookup[first + k] = (uint16_t)((c->length[i] << 8) | (i ^ 0x80u));
            }
        }
    }
    ajpq_huffman_table_t table = {(uint16_t)n, max_length,    lookup_bits,   c->lookup,
                                  c->symbols,  c->first_code, c->count, c->first_index};
    c->table = table;
}

/* MSB-first codes of message (symbol indices mod n), then zero padding bytes. */
static size_t encode(const code_t *c, size_t n, const uint8_t *message, size_t count,
                     uint8_t *out)
{
    size_t bits = 0;
    memset(out, 0, (count * MAX_LENGTH + 7u) / 8u + AJPQ_HUFFMAN_PAD_BYTES);
    for (size_t k = 0; k < count; ++k) {
        size_t i = message[k] % n;
        for (int b = c->length[i] - 1; b >= 0; --b, ++bits) {
            if ((c->code[i] >> b) & 1u) {
                out[bits / 8u] |= (uint8_t)(0x80u >> (bits % 8u));
            }
        }
    }
    return (bits + 7u) / 8u + AJPQ_HUFFMAN_PAD_BYTES;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static code_t c;
    static uint8_t stream[(MESSAGE * MAX_LENGTH + 7u) / 8u + AJPQ_HUFFMAN_PAD_BYTES];
    static int8_t out[4096];
    if (size < 2u) {
        return 0;
    }
    size_t n = 1u + data[0];
    if (size < 2u + n + MESSAGE) {
        return 0;
    }
    choose_lengths(&c, n, &data[2]);
    build(&c, n, data[1]);
    if (ajpq_huffman_validate(&c.table) != AJPQ_HUFFMAN_OK) {
        abort(); /* a canonical code is a valid table */
    }
    const uint8_t *message = &data[2 + n];
    size_t length = encode(&c, n, message, MESSAGE, stream);
    if (ajpq_huffman_decode(&c.table, stream, length, MESSAGE, out) != AJPQ_HUFFMAN_OK) {
        abort();
    }
    for (size_t k = 0; k < MESSAGE; ++k) {
        if (out[k] != (int8_t)((int)(message[k] % n) - 128)) {
            abort();
        }
    }
    size_t left = size - (2u + n + MESSAGE);
    uint8_t *rest = malloc(left ? left : 1u); /* exactly the stream: ASan flags reads past */
    if (rest != NULL) {
        memcpy(rest, message + MESSAGE, left);
        size_t count = 8u * left + 8u; /* more than the stream can hold: it runs out */
        count = count < sizeof out ? count : sizeof out;
        (void)ajpq_huffman_decode(&c.table, rest, left, count, out);
        free(rest);
    }
    return 0;
}
