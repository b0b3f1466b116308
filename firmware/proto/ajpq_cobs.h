/* ajpq_cobs.h - Consistent Overhead Byte Stuffing (COBS): removes every 0x00 from a buffer
 * so that 0x00 can delimit frames on the serial line. Encoding adds one byte per started
 * block of 254 bytes (at most n/254 + 1). No allocation: the caller owns both buffers.
 */
#ifndef AJPQ_COBS_H
#define AJPQ_COBS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Worst-case encoded size of n bytes. */
#define AJPQ_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

/* Encode in[0..n) into out (capacity cap); returns the encoded length, or 0 when out is too
 * small (an encoding is never empty). The result holds no 0x00 byte. */
size_t ajpq_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Decode in[0..n) (no delimiters) into out (capacity cap); returns 0 and sets *out_len, or
 * -1 when the input is not valid COBS (a 0x00 byte, a block past the end) or out is too
 * small. */
int ajpq_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_COBS_H */
