/* ajpq_frame.c - frame encode/decode: header, CRC and COBS (see ajpq_frame.h). */
#include "ajpq_frame.h"

#include <string.h>

#include "ajpq_crc.h"

size_t ajpq_frame_encode(const ajpq_frame *frame, uint8_t *out, size_t cap)
{
    uint8_t raw[AJPQ_FRAME_MAX_RAW];
    if (frame->length > AJPQ_FRAME_MAX_BODY) {
        return 0;
    }
    raw[0] = frame->seq;
    raw[1] = frame->cmd;
    memcpy(&raw[2], frame->body, frame->length);
    size_t n = 2u + frame->length;
    ajpq_put_u16(&raw[n], ajpq_crc16(raw, n));
    return ajpq_cobs_encode(raw, n + 2u, out, cap);
}

int ajpq_frame_decode(const uint8_t *encoded, size_t n, ajpq_frame *frame)
{
    uint8_t raw[AJPQ_FRAME_MAX_RAW];
    size_t raw_length = 0;
    if (ajpq_cobs_decode(encoded, n, raw, sizeof raw, &raw_length) != 0) {
        return AJPQ_FRAME_BAD_COBS;
    }
    if (raw_length < 4u) {
        return AJPQ_FRAME_TOO_SHORT;
    }
    size_t body_length = raw_length - 4u;
    uint16_t crc = ajpq_get_u16(&raw[raw_length - 2u]);
    frame->seq = raw[0];
    frame->cmd = raw[1];
    frame->crc = crc;
    if (ajpq_crc16(raw, raw_length - 2u) != crc) {
        return AJPQ_FRAME_BAD_CRC;
    }
    frame->length = body_length;
    memcpy(frame->body, &raw[2], body_length);
    return AJPQ_FRAME_OK;
}
