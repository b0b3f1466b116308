/* fuzz_huffman_table.c - libFuzzer target: ajpq_huffman_validate on arbitrary tables, and
 * the decoder on whatever table it accepts (firmware/runtime/ajpq_huffman.c). Every array
 * is allocated exactly as large as the table's own fields say, so AddressSanitizer flags
 * any read the validation lets through.
 *
 * Input: num_symbols u16, max_length u8, lookup_bits u8, count u16 (weights to decode),
 * then lookup, symbols, first_code, count, first_index (little-endian, as long as the
 * fields say; zeros once the input ends), then the stream (the rest).
 * Built with -DAJPQ_FUZZ_SKIP_VALIDATE it decodes every table, as the firmware did before
 * it validated: the damaged tables kept in corpus/fuzz_huffman_table/ then crash it. */
#include <stdlib.h>
#include <string.h>

#include "ajpq_huffman.h"

typedef struct {
    const uint8_t *data;
    size_t left;
} reader;

static uint32_t take(reader *in, size_t bytes)
{
    uint32_t value = 0;
    for (size_t i = 0; i < bytes; ++i) {
        uint32_t byte = in->left ? (in->left--, *in->data++) : 0u;
        value |= byte << (8u * i);
    }
    return value;
}

static uint16_t *take_u16s(reader *in, size_t count)
{
    uint16_t *values = calloc(count, sizeof *values); /* count >= 1; zeros past the input */
    for (size_t i = 0; values != NULL && i < count && in->left > 0u; ++i) {
        values[i] = (uint16_t)take(in, 2u);
    }
    return values;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader in = {data, size};
    uint16_t num_symbols = (uint16_t)take(&in, 2u);
    uint8_t max_length = (uint8_t)take(&in, 1u);
    uint8_t lookup_bits = (uint8_t)take(&in, 1u);
    size_t count = take(&in, 2u) % 4096u;
    size_t lookup_size = lookup_bits <= AJPQ_HUFFMAN_MAX_CODE_LENGTH ? 1u << lookup_bits : 1u;
    uint16_t *lookup = take_u16s(&in, lookup_size);
    int8_t *symbols = calloc(num_symbols, 1u); /* NULL or a 0-byte block when 0 */
    for (size_t i = 0; symbols != NULL && i < num_symbols && in.left > 0u; ++i) {
        symbols[i] = (int8_t)take(&in, 1u);
    }
    uint16_t *first_code = take_u16s(&in, (size_t)max_length + 1u);
    uint16_t *counts = take_u16s(&in, (size_t)max_length + 1u);
    uint16_t *first_index = take_u16s(&in, (size_t)max_length + 1u);
    ajpq_huffman_table_t table = {num_symbols, max_length, lookup_bits, lookup,
                                  symbols,     first_code, counts,      first_index};
    uint8_t *stream = malloc(in.left ? in.left : 1u); /* reads past it are flagged */
    int8_t *out = malloc(count ? count : 1u);
    if (stream != NULL && out != NULL) {
        if (in.left) {
            memcpy(stream, in.data, in.left);
        }
#ifdef AJPQ_FUZZ_SKIP_VALIDATE
        int valid = AJPQ_HUFFMAN_OK;
#else
        int valid = ajpq_huffman_validate(&table);
#endif
        if (valid == AJPQ_HUFFMAN_OK) {
            (void)ajpq_huffman_decode(&table, stream, in.left, count, out);
        }
    }
    free(out);
    free(stream);
    free(first_index);
    free(counts);
    free(first_code);
    free(symbols);
    free(lookup);
    return 0;
}
