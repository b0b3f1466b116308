/* ajpq_crc.h - CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, no final xor);
 * the check value of the ASCII bytes "123456789" is 0x29B1. */
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

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_CRC_H */
