/* ajpq_verify.c - the boot-time check of the model's flash (see ajpq_verify.h). */
#include "ajpq_verify.h"

#include "ajpq_crc.h"

uint32_t ajpq_model_weights_crc(void)
{
    uint32_t crc = AJPQ_CRC32_INIT;
    for (uint32_t i = 0; i < ajpq_model_blob_count; ++i) {
        crc = ajpq_crc32_update(crc, ajpq_model_blobs[i].data, ajpq_model_blobs[i].size);
    }
    for (uint32_t i = 0; i < ajpq_model_table_count; ++i) {
        const ajpq_huffman_table_t *table = ajpq_model_tables[i];
        const uint8_t shape[4] = {(uint8_t)(table->num_symbols & 0xFFu),
                                  (uint8_t)(table->num_symbols >> 8), table->max_length,
                                  table->lookup_bits};
        crc = ajpq_crc32_update(crc, shape, sizeof shape);
    }
    return crc;
}

uint32_t ajpq_model_verify(uint32_t expected, uint32_t *actual)
{
    *actual = ajpq_model_weights_crc();
    if (*actual != expected) {
        return AJPQ_MODEL_BAD_CRC;
    }
    for (uint32_t i = 0; i < ajpq_model_table_count; ++i) {
        if (ajpq_huffman_validate(ajpq_model_tables[i]) != AJPQ_HUFFMAN_OK) {
            return AJPQ_MODEL_BAD_TABLE;
        }
    }
    return AJPQ_MODEL_VERIFIED;
}
