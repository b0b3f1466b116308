/* ajpq_requant.h - the integer requantization shared by every kernel.
 *
 * out = clamp((acc * multiplier + 2^(shift-1)) >> shift, act_min, act_max), as
 * sdk/graph/requant.py defines it: the product is taken in 64 bits, rounded once (half up),
 * and the shift is a floor (arithmetic) shift. A layer whose ajpq_requant_t has rounding
 * set uses TFLite's double rounding instead (ajpq_requantize_double).
 *
 * Everything here is portable C99 with no undefined or implementation-defined behaviour:
 * the multiply-add wraps modulo 2^64 in unsigned arithmetic (as numpy's int64 does), the
 * result is mapped back to int64_t without an out-of-range conversion, and the floor shift
 * of a negative value is written with bitwise NOT instead of >> on a negative operand.
 */
#ifndef AJPQ_REQUANT_H
#define AJPQ_REQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "ajpq_kernels.h"

/* The int64_t whose two's-complement bits are u (no implementation-defined conversion). */
static inline int64_t ajpq_from_u64(uint64_t u)
{
    if (u <= (uint64_t)INT64_MAX) {
        return (int64_t)u;
    }
    return -(int64_t)(~u) - 1;
}

/* a * b + c modulo 2^64, as int64 (numpy int64 semantics, never signed overflow). */
static inline int64_t ajpq_mul_add_wrap(int64_t a, int64_t b, int64_t c)
{
    return ajpq_from_u64((uint64_t)a * (uint64_t)b + (uint64_t)c);
}

/* floor(x / 2^shift) for 0 <= shift <= 63: an arithmetic right shift, written portably. */
static inline int64_t ajpq_shift_right_floor(int64_t x, int shift)
{
    if (x >= 0) {
        return x >> shift;
    }
    return ~((~x) >> shift); /* ~x = -x - 1 >= 0, so both shifts are of non-negatives */
}

static inline int32_t ajpq_clamp(int64_t x, int32_t lo, int32_t hi)
{
    if (x < lo) {
        return lo;
    }
    if (x > hi) {
        return hi;
    }
    return (int32_t)x;
}

/* One requantization: shift in 1..62, multiplier in [0, 2^31). */
static inline int32_t ajpq_requantize(int64_t acc, int32_t multiplier, int shift, int32_t lo,
                                      int32_t hi)
{
    int64_t rounding = (int64_t)1 << (shift - 1);
    int64_t scaled = ajpq_mul_add_wrap(acc, multiplier, rounding);
    return ajpq_clamp(ajpq_shift_right_floor(scaled, shift), lo, hi);
}

/* TFLite's "double rounding" rescale (MultiplyByQuantizedMultiplier, what the pip TFLM
 * interpreter and CMSIS-NN run by default), unclamped, in this header's convention (value ~=
 * acc * multiplier * 2^-shift, shift in 0..62): with e = 31 - shift, acc * 2^max(e, 0) goes
 * through the rounding doubling high multiply (product + 2^30, or + 1 - 2^30 when negative,
 * divided by 2^31 toward zero), then a rounding divide by 2^max(-e, 0) (half away from
 * zero); as sdk/graph/requant.py's requantize_double, which the real TFLM interpreter
 * matches. Exact while acc * 2^max(e, 0) fits int32, as TFLite assumes (beyond, it wraps
 * modulo 2^64 as numpy's int64 does, never UB). */
static inline int64_t ajpq_rescale_double(int64_t acc, int32_t multiplier, int shift)
{
    int exponent = 31 - shift;
    int64_t x = exponent > 0 ? ajpq_mul_add_wrap(acc, (int64_t)1 << exponent, 0) : acc;
    int64_t nudge = ajpq_mul_add_wrap(x, multiplier, 0) >= 0 ? ((int64_t)1 << 30)
                                                              : 1 - ((int64_t)1 << 30);
    int64_t nudged = ajpq_mul_add_wrap(x, multiplier, nudge);
    /* nudged / 2^31 truncated toward zero: a floor shift, after adding 2^31 - 1 if < 0 */
    int64_t high = ajpq_shift_right_floor(nudged >= 0 ? nudged : nudged + INT32_MAX, 31);
    int right = exponent < 0 ? -exponent : 0;
    uint64_t mask = ((uint64_t)1 << right) - 1u;
    uint64_t remainder = (uint64_t)high & mask; /* the low bits of two's complement */
    uint64_t threshold = (mask >> 1) + (high < 0 ? 1u : 0u);
    return ajpq_shift_right_floor(high, right) + (remainder > threshold ? 1 : 0);
}

/* TFLite's double-rounding requantization: ajpq_rescale_double, clamped to [lo, hi]. Used
 * by every kernel whose requant.rounding is set (graphs quantized with target="tflite"). */
static inline int32_t ajpq_requantize_double(int64_t acc, int32_t multiplier, int shift,
                                             int32_t lo, int32_t hi)
{
    return ajpq_clamp(ajpq_rescale_double(acc, multiplier, shift), lo, hi);
}

/* ajpq_requantize_double of an int32 accumulator, in 32-bit steps where shift >= 31 (no
 * left shift: one 64-bit product, its high word rounded, a rounding shift of an int32; what
 * CMSIS-NN's arm_nn_requantize does), else the general path. Equal to
 * ajpq_requantize_double for every int32 acc: |acc * multiplier| < 2^62, so the product and
 * the nudge cannot wrap and the rounded high word fits int32. For the M4 kernels. */
static inline int32_t ajpq_requantize_double_i32(int32_t acc, int32_t multiplier, int shift,
                                                 int32_t lo, int32_t hi)
{
    if (shift < 31) {
        return ajpq_requantize_double(acc, multiplier, shift, lo, hi);
    }
    int64_t product = (int64_t)acc * multiplier;
    int64_t nudged = product + (product >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30));
    int32_t high = (int32_t)(nudged >= 0 ? nudged >> 31 : -((-nudged) >> 31)); /* toward 0 */
    int right = shift - 31; /* 0..31 */
    uint32_t mask = ((uint32_t)1 << right) - 1u;
    uint32_t remainder = (uint32_t)high & mask;
    uint32_t threshold = (mask >> 1) + (high < 0 ? 1u : 0u);
    int32_t floor = high >= 0 ? high >> right : ~((~high) >> right);
    int32_t out = floor + (remainder > threshold ? 1 : 0);
    return out < lo ? lo : (out > hi ? hi : out);
}

/* Where channel `channel`'s multiplier and shift are: `channel`, or 0 when one pair serves
 * the whole tensor (rq->per_tensor). */
static inline int32_t ajpq_requant_index(const ajpq_requant_t *rq, int32_t channel)
{
    return rq->per_tensor ? 0 : channel;
}

/* Channel `channel` of acc requantized by rq (enabled) in rq's rounding mode. */
static inline int32_t ajpq_requant_channel(int64_t acc, const ajpq_requant_t *rq,
                                           int32_t channel)
{
    int32_t i = ajpq_requant_index(rq, channel);
    if (rq->rounding) {
        return ajpq_requantize_double(acc, rq->multiplier[i], rq->shift[i], rq->act_min,
                                      rq->act_max);
    }
    return ajpq_requantize(acc, rq->multiplier[i], rq->shift[i], rq->act_min, rq->act_max);
}

/* The low 32 bits of x as int32_t (two's complement wrap, written portably). */
static inline int32_t ajpq_wrap_i32(int64_t x)
{
    uint32_t u = (uint32_t)((uint64_t)x & 0xFFFFFFFFu);
    if (u <= (uint32_t)INT32_MAX) {
        return (int32_t)u;
    }
    return -(int32_t)(~u) - 1;
}

/* Writes output element `index` of channel `channel`: requantized to int16_t when
 * rq->enabled (in rq's rounding mode), else the raw accumulator as int32_t (the head). */
static inline void ajpq_store_output(void *output, size_t index, int64_t acc,
                                     const ajpq_requant_t *rq, int32_t channel)
{
    if (rq->enabled) {
        ((int16_t *)output)[index] = (int16_t)ajpq_requant_channel(acc, rq, channel);
    } else {
        ((int32_t *)output)[index] = ajpq_wrap_i32(acc);
    }
}

#endif /* AJPQ_REQUANT_H */
