/* Table-driven canonical Huffman decoder: one lookup for codes of at most lookup_bits bits,
 * a canonical search over the longer lengths otherwise (see ajpq_huffman.h). */
#include "ajpq_huffman.h"

/* The int8_t whose two's-complement bits are the low byte of entry (no
 * implementation-defined conversion). */
static inline int8_t entry_symbol(uint32_t entry)
{
    int32_t low = (int32_t)(entry & 0xFFu);
    return (int8_t)(low - ((low & 0x80) << 1));
}

/* The code at the top of buffer that is longer than lookup_bits: sets *length and returns its
 * symbol. A bit pattern that is no code word (only in a corrupt stream) decodes as 0 and
 * consumes max_length bits. */
static int8_t decode_long(const ajpq_huffman_table_t *table, uint32_t buffer, uint32_t *length)
{
    for (uint32_t n = (uint32_t)table->lookup_bits + 1u; n <= table->max_length; ++n) {
        uint32_t offset = (buffer >> (32u - n)) - table->first_code[n];
        if (offset < table->count[n]) {
            *length = n;
            return table->symbols[table->first_index[n] + offset];
        }
    }
    *length = table->max_length;
    return 0;
}

/* Per code length n: counts within num_symbols, Kraft's sum at most 1, and the symbols of
 * the lengths decode_long searches inside symbols[]. */
static int lengths_are_valid(const ajpq_huffman_table_t *table)
{
    uint32_t kraft = 0; /* in units of 2^-16 */
    uint32_t total = 0;
    for (uint32_t n = 1; n <= table->max_length; ++n) {
        uint32_t count = table->count[n];
        total += count;
        kraft += count << (AJPQ_HUFFMAN_MAX_CODE_LENGTH - n);
        if (count > table->num_symbols || total > table->num_symbols || kraft > 0x10000u) {
            return 0;
        }
        if (n > table->lookup_bits && table->first_index[n] > table->num_symbols - count) {
            return 0;
        }
    }
    return total == table->num_symbols;
}

int ajpq_huffman_validate(const ajpq_huffman_table_t *table)
{
    if (table == NULL || table->lookup == NULL || table->symbols == NULL ||
        table->first_code == NULL || table->count == NULL || table->first_index == NULL) {
        return AJPQ_HUFFMAN_BAD_TABLE;
    }
    if (table->max_length < 1u || table->max_length > AJPQ_HUFFMAN_MAX_CODE_LENGTH ||
        table->lookup_bits < 1u || table->lookup_bits > table->max_length ||
        table->num_symbols < 1u || table->num_symbols > 256u) {
        return AJPQ_HUFFMAN_BAD_TABLE;
    }
    for (uint32_t i = 0; i < (1u << table->lookup_bits); ++i) {
        if ((uint32_t)(table->lookup[i] >> 8) > table->lookup_bits) {
            return AJPQ_HUFFMAN_BAD_TABLE;
        }
    }
    return lengths_are_valid(table) ? AJPQ_HUFFMAN_OK : AJPQ_HUFFMAN_BAD_TABLE;
}

int ajpq_huffman_decode(const ajpq_huffman_table_t *table, const uint8_t *data, size_t size,
                        size_t count, int8_t *out)
{
    const uint16_t *lookup = table->lookup;
    const uint8_t *end = data + size;
    const uint32_t peek_shift = 32u - table->lookup_bits;
    uint32_t buffer = 0; /* the next unread bits, MSB aligned */
    uint32_t bits = 0;   /* how many of them are valid */
    int result = AJPQ_HUFFMAN_OK;
    for (size_t i = 0; i < count; ++i) {
        if (bits < 16u) { /* keep at least 16 bits: the longest code */
            uint32_t pair = 0u; /* past the end of the stream: zero bits, never a read */
            if (end - data >= 2) {
                pair = ((uint32_t)data[0] << 8) | data[1];
                data += 2;
            } else {
                result = AJPQ_HUFFMAN_SHORT_STREAM;
            }
            buffer |= pair << (16u - bits);
            bits += 16u;
        }
        uint32_t entry = lookup[buffer >> peek_shift];
        uint32_t length = entry >> 8;
        int8_t symbol;
        if (length != 0u) {
            symbol = entry_symbol(entry);
        } else {
            symbol = decode_long(table, buffer, &length);
        }
        out[i] = symbol;
        buffer <<= length;
        bits -= length;
    }
    return result;
}
