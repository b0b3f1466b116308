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
 *
 * The tables live in flash, so a half-written flash or an image from another build could
 * hand the decoder anything: ajpq_huffman_validate checks a table before it is used (the
 * model verifies every table at boot, ajpq_verify.h), and the decoder never reads past the
 * stream length it is given.
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

#define AJPQ_HUFFMAN_OK 0
#define AJPQ_HUFFMAN_BAD_TABLE (-1)
#define AJPQ_HUFFMAN_SHORT_STREAM (-2)

/* AJPQ_HUFFMAN_OK when the decoder is safe to run on this table: 1 <= lookup_bits <=
 * max_length <= 16, 1 <= num_symbols <= 256, every lookup entry is 0 or a length in
 * 1..lookup_bits, first_index[n] + count[n] <= num_symbols for every longer length n, and
 * the code lengths obey Kraft's inequality. AJPQ_HUFFMAN_BAD_TABLE otherwise. */
int ajpq_huffman_validate(const ajpq_huffman_table_t *table);

/* Decodes count weights from data[0..size) (a stream written by huffman.encode for this
 * table, padding included) into out[count]. The table must have passed
 * ajpq_huffman_validate. Returns AJPQ_HUFFMAN_OK, or AJPQ_HUFFMAN_SHORT_STREAM when the
 * stream ends before count weights (a damaged stream): the decoder then reads zero bits
 * instead of what lies past data[size - 1]. Needs no scratch. */
int ajpq_huffman_decode(const ajpq_huffman_table_t *table, const uint8_t *data, size_t size,
                        size_t count, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_HUFFMAN_H */
