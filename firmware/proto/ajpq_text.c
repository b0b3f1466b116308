/* ajpq_text.c - text-mode helpers (see ajpq_text.h). */
#include "ajpq_text.h"

#include "ajpq_port.h"

void ajpq_text_put_u32(uint32_t value)
{
    char digits[11];
    size_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    ajpq_uart_write((const uint8_t *)&digits[n], sizeof digits - n);
}

void ajpq_text_put_i32(int32_t value)
{
    if (value < 0) {
        ajpq_uart_print("-");
        ajpq_text_put_u32((uint32_t)(-(int64_t)value));
    } else {
        ajpq_text_put_u32((uint32_t)value);
    }
}

/* Parse a decimal u32 starting at *cursor; returns 0 on a missing or bad number. */
int ajpq_text_parse_u32(const char **cursor, uint32_t *value)
{
    const char *p = *cursor;
    uint64_t number = 0;
    while (*p == ' ') {
        p++;
    }
    if (*p < '0' || *p > '9') {
        return 0;
    }
    while (*p >= '0' && *p <= '9' && number <= UINT32_MAX) {
        number = number * 10u + (uint64_t)(*p++ - '0');
    }
    if (number > UINT32_MAX) {
        return 0;
    }
    *value = (uint32_t)number;
    *cursor = p;
    return 1;
}

int ajpq_text_hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}
