/* ajpq_frame.h - binary frames of the ajpq serial protocol (docs/protocol.md).
 *
 * On the wire a frame is 0x00 <COBS(raw)> 0x00, where
 *   raw = [seq u8][cmd u8][body ...][crc16 u16 little-endian]
 * and the CRC (CRC-16/CCITT-FALSE) covers seq, cmd and body. A request's body is the
 * command's payload; a reply echoes the request's seq, sets cmd to the request's cmd with
 * bit 7 set (AJPQ_REPLY), and its body is [status u8][payload ...].
 */
#ifndef AJPQ_FRAME_H
#define AJPQ_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ajpq_cobs.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AJPQ_PROTOCOL_VERSION 2u /* 2: INFO ends with the weights CRC and check */
/* Largest body this firmware sends and accepts; INFO reports it and the host sizes its
 * requests from it. 244 is the smallest a host can count on (what firmware before frames
 * grew sent); a port short of RAM may build with -DAJPQ_FRAME_MAX_BODY=244u. The server
 * holds about four frames of this size (rx, tx, request, reply) plus one on the stack. */
#ifndef AJPQ_FRAME_MAX_BODY
#define AJPQ_FRAME_MAX_BODY 512u
#endif
#if AJPQ_FRAME_MAX_BODY < 244u || AJPQ_FRAME_MAX_BODY > 65535u
#error "AJPQ_FRAME_MAX_BODY must lie in 244..65535 (INFO reports it as a u16)"
#endif
#define AJPQ_FRAME_MAX_RAW (AJPQ_FRAME_MAX_BODY + 4u)
#define AJPQ_FRAME_MAX_ENCODED AJPQ_COBS_MAX_ENCODED(AJPQ_FRAME_MAX_RAW)

/* Commands (requests, 0x01..0x7E); a reply's cmd is the request's | AJPQ_REPLY. A frame
 * whose cmd is no request (0x00, 0x7F, 0x80..0xFF) is answered with cmd AJPQ_REPLY and
 * AJPQ_STATUS_UNKNOWN_COMMAND, so its reply never reads as a NAK. */
#define AJPQ_CMD_INFO 0x01u
#define AJPQ_CMD_LOAD_INPUT 0x02u
#define AJPQ_CMD_RUN 0x03u
#define AJPQ_CMD_READ_OUTPUT 0x04u
#define AJPQ_CMD_READ_LAYERS 0x05u
#define AJPQ_CMD_QUIT 0x06u
#define AJPQ_REPLY 0x80u
/* Sent instead of a reply when a frame arrived damaged (bad COBS, short, bad CRC). */
#define AJPQ_CMD_NAK 0xFFu

/* Status byte, first byte of every reply body. */
#define AJPQ_STATUS_OK 0x00u
#define AJPQ_STATUS_BAD_FRAME 0x01u
#define AJPQ_STATUS_UNKNOWN_COMMAND 0x02u
#define AJPQ_STATUS_BAD_LENGTH 0x03u
#define AJPQ_STATUS_BAD_ARGUMENT 0x04u
#define AJPQ_STATUS_BAD_MODEL 0x05u /* the model failed its check of flash (ajpq_verify.h) */

/* Largest LOAD_INPUT chunk (the u32 offset, then pixels), READ_OUTPUT count (u32 values
 * after the status byte) and READ_LAYERS count (two u32 each). With a 244-byte body the
 * chunk is 200, as before frames grew (hosts send 200 to a board that reports 244). */
#if AJPQ_FRAME_MAX_BODY == 244u
#define AJPQ_MAX_INPUT_CHUNK 200u
#else
#define AJPQ_MAX_INPUT_CHUNK (AJPQ_FRAME_MAX_BODY - 4u)
#endif
#define AJPQ_MAX_OUTPUT_VALUES ((AJPQ_FRAME_MAX_BODY - 1u) / 4u)
#define AJPQ_MAX_LAYER_ENTRIES ((AJPQ_FRAME_MAX_BODY - 1u) / 8u)

typedef struct {
    uint8_t seq;
    uint8_t cmd;
    uint16_t crc; /* set by ajpq_frame_decode */
    size_t length;
    uint8_t body[AJPQ_FRAME_MAX_BODY];
} ajpq_frame;

/* Results of ajpq_frame_decode. */
#define AJPQ_FRAME_OK 0
#define AJPQ_FRAME_BAD_COBS (-1)
#define AJPQ_FRAME_TOO_SHORT (-2)
#define AJPQ_FRAME_BAD_CRC (-3)

/* COBS-encode a frame (without the 0x00 delimiters) into out; returns the encoded length,
 * or 0 when out is too small or the body is longer than AJPQ_FRAME_MAX_BODY. */
size_t ajpq_frame_encode(const ajpq_frame *frame, uint8_t *out, size_t cap);

/* Decode the bytes between two 0x00 delimiters; returns AJPQ_FRAME_OK or an error code. */
int ajpq_frame_decode(const uint8_t *encoded, size_t n, ajpq_frame *frame);

static inline uint16_t ajpq_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)(p[1] << 8));
}

static inline uint32_t ajpq_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline void ajpq_put_u16(uint8_t *p, uint16_t value)
{
    p[0] = (uint8_t)(value & 0xFFu);
    p[1] = (uint8_t)(value >> 8);
}

static inline void ajpq_put_u32(uint8_t *p, uint32_t value)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(value & 0xFFu);
        value >>= 8;
    }
}

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_FRAME_H */
