/* ajpq_text.h - helpers of the EEMBC / MLPerf Tiny text mode: decimal output over the UART,
 * decimal and hex parsing of command arguments. */
#ifndef AJPQ_TEXT_H
#define AJPQ_TEXT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Write value in decimal to the serial port. */
void ajpq_text_put_u32(uint32_t value);
void ajpq_text_put_i32(int32_t value);

/* Parse a decimal u32 at *cursor (after spaces), advancing it; returns 0 when there is none
 * or it does not fit in 32 bits. */
int ajpq_text_parse_u32(const char **cursor, uint32_t *value);

/* 0..15 for a hex digit, -1 otherwise. */
int ajpq_text_hex_value(char c);

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_TEXT_H */
