/* ajpq_crc.h - CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, no final xor;
 * check value of the ASCII bytes "123456789": 0x29B1) for frames, and CRC-32 (IEEE 802.3,
 * the CRC of zlib and Python's zlib.crc32; check value 0xCBF43926) for the model's weights
 * and the server's retry cache. */
#ifndef AJPQ_CRC_H
#define AJPQ_CRC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AJPQ_CRC16_INIT 0xFFFFu

/* Continue a CRC over n more bytes; start with AJPQ_CRC16_INIT. */
uint16_t ajpq_crc16_update(uint16_t crc, const uint8_t *data, size_t n);

/* CRC-16/CCITT-FALSE of data[0..n). */
uint16_t ajpq_crc16(const uint8_t *data, size_t n);

#define AJPQ_CRC32_INIT 0u

/* Continue a CRC-32 over n more bytes; start with AJPQ_CRC32_INIT (as zlib.crc32). */
uint32_t ajpq_crc32_update(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_CRC_H */
