/* ajpq_huffman.h - table-driven decoder of the canonical Huffman weight streams.
 *
 * backends/mcu/huffman.py builds one canonical code per weight tensor (lengths 1..16), packs
 * the weights MSB first and writes the table below as C (huffman.c_table). The stream is the
 * codes, zero bits up to a whole byte, then AJPQ_HUFFMAN_PAD_BYTES zero bytes: the decoder
 * refills its bit buffer two bytes at a time ahead of the codes it has used and may read up
 * to 3 bytes past the last code byte, never further.
 *
 * Table layout (all const, in flash):
 *  - lookup[1 << lookup_bits]: indexed by the next lookup_bits bits of the stream. An entry
 *    is (length << 8) | (uint8_t)symbol for a code of at most lookup_bits bits, or 0 when
 *    those bits begin a longer code. lookup_bits = min(8, max_length) by default.
 *  - symbols[num_symbols]: the symbols in canonical order (code length, then value).
 *  - first_code, count, first_index [max_length + 1]: per code length, the canonical code of
 *    its first symbol, how many symbols have that length, and where the first one sits in
 *    symbols. Codes longer than lookup_bits are found by trying each longer length in turn.
 */
#ifndef AJPQ_HUFFMAN_H
#define AJPQ_HUFFMAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AJPQ_HUFFMAN_MAX_CODE_LENGTH 16
#define AJPQ_HUFFMAN_PAD_BYTES 4

typedef struct {
    uint16_t num_symbols;
    uint8_t max_length;          /* longest code, 1..16 */
    uint8_t lookup_bits;         /* width of the first-level table, 1..max_length */
    const uint16_t *lookup;      /* [1 << lookup_bits] */
    const int8_t *symbols;       /* [num_symbols], canonical order */
    const uint16_t *first_code;  /* [max_length + 1] */
    const uint16_t *count;       /* [max_length + 1] */
    const uint16_t *first_index; /* [max_length + 1] */
} ajpq_huffman_table_t;

/* Decodes count weights from data (a stream written by huffman.encode for this table,
 * padding included) into out[count]. Needs no scratch. */
void ajpq_huffman_decode(const ajpq_huffman_table_t *table, const uint8_t *data, size_t count,
                         int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_HUFFMAN_H */
