/* ajpq_verify.h - what the device checks in flash before it serves the model.
 *
 * The generated ajpq_weights.c lists its arrays (weight streams, the arrays of each Huffman
 * table, biases, multipliers, shifts, index arrays) in ajpq_model_blobs and every
 * Huffman table in ajpq_model_tables; ajpq_model.h carries AJPQ_MODEL_WEIGHTS_CRC, the CRC-32
 * (zlib's) that ajpq computed when it wrote them, over:
 *   the bytes of every blob, in list order, then for every table in list order its
 *   num_symbols (u16 little-endian), max_length and lookup_bits (u8 each).
 * A half-written flash, or weights from another build, changes that CRC; a table the decoder
 * cannot run safely fails ajpq_huffman_validate. The code, the params structs of
 * ajpq_model.c and these lists are not covered (docs/protocol.md). The server verifies once at boot, reports
 * the result and the CRC it computed in INFO, and refuses to run a model that failed.
 */
#ifndef AJPQ_VERIFY_H
#define AJPQ_VERIFY_H

#include <stdint.h>

#include "ajpq_huffman.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const void *data;
    uint32_t size; /* bytes */
} ajpq_blob_t;

/* Written by ajpq into ajpq_weights.c; the counts may be 0 (the arrays then hold one
 * unused entry, as C has no empty arrays). */
extern const ajpq_blob_t ajpq_model_blobs[];
extern const uint32_t ajpq_model_blob_count;
extern const ajpq_huffman_table_t *const ajpq_model_tables[];
extern const uint32_t ajpq_model_table_count;

/* Results of ajpq_model_verify, as INFO reports them. */
#define AJPQ_MODEL_VERIFIED 0u
#define AJPQ_MODEL_BAD_CRC 1u   /* flash does not hold what ajpq wrote */
#define AJPQ_MODEL_BAD_TABLE 2u /* the CRC matches but a table fails validation */
#define AJPQ_MODEL_BAD_RUN 3u   /* a weight stream ended early during a run */

/* The CRC-32 of the blobs and table shapes as flash holds them now. */
uint32_t ajpq_model_weights_crc(void);

/* Check flash against expected (AJPQ_MODEL_WEIGHTS_CRC): AJPQ_MODEL_VERIFIED, or why not.
 * *actual receives the CRC computed. The tables are validated only after the CRC matched,
 * so their array sizes can be trusted. */
uint32_t ajpq_model_verify(uint32_t expected, uint32_t *actual);

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_VERIFY_H */
