/* ajpq_crc.c - bitwise CRC-16/CCITT-FALSE (frames are short; no table needed). */
#include "ajpq_crc.h"

uint16_t ajpq_crc16_update(uint16_t crc, const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        crc = (uint16_t)(crc ^ (uint16_t)((uint16_t)data[i] << 8));
        for (int bit = 0; bit < 8; bit++) {
            if (crc & 0x8000u) {
                crc = (uint16_t)((uint16_t)(crc << 1) ^ 0x1021u);
            } else {
                crc = (uint16_t)(crc << 1);
            }
        }
    }
    return crc;
}

uint16_t ajpq_crc16(const uint8_t *data, size_t n)
{
    return ajpq_crc16_update(AJPQ_CRC16_INIT, data, n);
}
