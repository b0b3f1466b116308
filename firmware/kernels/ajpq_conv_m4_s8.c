/* Dense convolution for the Cortex-M4 (DSP extension): same ABI and bit-exact results as
 * ajpq_conv_ref_s8.
 *
 * Algorithm (im2col + dual 16-bit MACs):
 *  1. Once per call, the layer's int8 weights are widened to int16 into the scratch arena,
 *     one row of `depth` values per output channel (depth = in_channels * kernel_h *
 *     kernel_w rounded up to a multiple of 4, the tail zero).
 *  2. For each pair of output pixels, the two input columns (the receptive fields, zero for
 *     padding, in the weights' [in][kh][kw] order) are gathered into the arena as int16:
 *     horizontal neighbours of a 3-wide kernel inside the input share their loads
 *     (gather_pair_3x3), interior pixels copy without checks, border pixels select per tap.
 *  3. Each pair of output channels is the dot product of its two weight rows with the two
 *     columns: 4 accumulators, one __SMLAD (two 16x16 MACs) per 32-bit word of each, so one
 *     column load serves two channels and one weight load serves two pixels (an assembly
 *     loop: 18 instructions per 16 MACs).
 *  4. Each accumulator is requantized exactly as the reference does (64-bit product, half-up
 *     rounding, floor shift); with every shift >= 33 that is done on the product's high word
 *     (requantize()), and the 0..255 / -128..127 clamps are one USAT / SSAT. A layer in
 *     TFLite's double rounding (requant.rounding) skips that fast path: every output goes
 *     through ajpq_requantize_double, as in the reference.
 * Without __ARM_FEATURE_DSP the same algorithm runs with plain multiply-adds (the host build,
 * which the tests compare with the golden executor).
 *
 * Precondition: the accumulator fits int32, i.e. |bias| + in_channels * kernel_h * kernel_w *
 * max|x| * 128 < 2^31 (true for 8-bit activations and |bias| < 2^30 up to ~32,000 taps);
 * the reference accumulates in int64, so the two agree whenever this holds.
 * Scratch: ajpq_conv_m4_s8_get_buffer_size() bytes, 4-byte aligned.
 */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"

/* SSAT/USAT through GCC builtins (arm_acle.h's __ssat trips -Wsign-conversion in GCC 12). */
#if defined(__ARM_FEATURE_SAT) && defined(__GNUC__) && !defined(__clang__)
#define AJPQ_HAVE_SAT 1
#endif

/* Taps per output channel, rounded up to a multiple of 4 (two 32-bit words). */
static size_t conv_depth(const ajpq_conv_params_t *p)
{
    size_t taps = (size_t)p->in_channels * (size_t)p->kernel_h * (size_t)p->kernel_w;
    return (taps + 3u) & ~(size_t)3u;
}

/* Requant constants of one output channel, precomputed per call (see requantize()). */
typedef struct {
    int32_t multiplier;
    uint32_t rounding_high; /* bits 32..63 of 2^(shift-1) + 2^62 */
    int32_t shift_high;     /* shift - 32; < 1 takes the general path */
    int32_t offset;         /* 2^(62 - shift) */
} channel_requant_t;

size_t ajpq_conv_m4_s8_get_buffer_size(const ajpq_conv_params_t *params)
{
    size_t depth = conv_depth(params);
    return ((size_t)params->out_channels + 2u) * depth * sizeof(int16_t) +
           (size_t)params->out_channels * sizeof(channel_requant_t);
}

/* Fills the constants; returns 1 when requant is enabled in single rounding and every shift
 * is >= 33 (the 32-bit path of requantize() serves all channels), else 0. */
static int prepare_requant(const ajpq_requant_t *rq, int32_t channels, channel_requant_t *out)
{
    int all_high = rq->enabled && !rq->rounding;
    for (int32_t c = 0; c < channels && rq->enabled; ++c) {
        int32_t r = ajpq_requant_index(rq, c);
        int32_t shift = rq->shift[r];
        out[c].multiplier = rq->multiplier[r];
        out[c].shift_high = shift - 32;
        out[c].rounding_high = 0;
        out[c].offset = 0;
        if (shift >= 33) {
            out[c].rounding_high = ((uint32_t)1 << (shift - 33)) + ((uint32_t)1 << 30);
            out[c].offset = (int32_t)1 << (62 - shift);
        } else {
            all_high = 0;
        }
    }
    return all_high;
}

/* The activation ranges with a one-instruction clamp on the M4 (USAT / SSAT). */
enum { CLAMP_ANY = 0, CLAMP_U8 = 1, CLAMP_S8 = 2 };

/* requantize() for shift >= 33 (see there); `clamp` is a constant where this is inlined. */
static inline int32_t requantize_high(int32_t acc, const channel_requant_t *r, int clamp,
                                      int32_t lo, int32_t hi)
{
    uint64_t product = (uint64_t)((int64_t)acc * r->multiplier);
    uint32_t high = (uint32_t)(product >> 32) + r->rounding_high;
    int32_t q = (int32_t)(high >> r->shift_high) - r->offset;
#if defined(AJPQ_HAVE_SAT)
    if (clamp == CLAMP_U8) {
        return (int32_t)__builtin_arm_usat(q, 8);
    }
    if (clamp == CLAMP_S8) {
        return (int32_t)__builtin_arm_ssat(q, 8);
    }
#else
    (void)clamp;
#endif
    return q < lo ? lo : (q > hi ? hi : q);
}

/* The reference's requantization of an int32 accumulator. With shift >= 33 it runs in
 * 32 bits: u = acc * multiplier + 2^(shift-1) + 2^62 lies in (0, 2^63 + 2^61) because
 * |acc * multiplier| < 2^62, so u is exact as uint64; floor(u / 2^shift) = floor((acc *
 * multiplier + 2^(shift-1)) / 2^shift) + 2^(62-shift), and the low word of the constant is
 * zero, so only the high word of the product is needed (one SMULL, add, shift, subtract). */
static inline int32_t requantize(int32_t acc, const channel_requant_t *r, int32_t lo,
                                 int32_t hi)
{
    int32_t q;
    if (r->shift_high >= 1) {
        uint64_t product = (uint64_t)((int64_t)acc * r->multiplier);
        uint32_t high = (uint32_t)(product >> 32) + r->rounding_high;
        q = (int32_t)(high >> r->shift_high) - r->offset;
    } else {
        return ajpq_requantize(acc, r->multiplier, (int)r->shift_high + 32, lo, hi);
    }
    return q < lo ? lo : (q > hi ? hi : q);
}

/* Zeroes values k..depth-1 (at most 3; written out so no memset call is emitted). */
static void zero_tail(int16_t *values, size_t k, size_t depth)
{
    if (k < depth) {
        values[k++] = 0;
    }
    if (k < depth) {
        values[k++] = 0;
    }
    if (k < depth) {
        values[k] = 0;
    }
}

/* The receptive field of output pixel `pixel` as int16, zeros for padding and the tail. */
static void gather_column(const ajpq_conv_params_t *p, const int16_t *input, int32_t pixel,
                          int16_t *column, size_t depth)
{
    int32_t oy = pixel / p->out_width;
    int32_t ox = pixel - oy * p->out_width;
    int32_t y0 = oy * p->stride_h - p->pad_h;
    int32_t x0 = ox * p->stride_w - p->pad_w;
    size_t plane = (size_t)p->in_height * (size_t)p->in_width;
    int inside = y0 >= 0 && x0 >= 0 && y0 + p->kernel_h <= p->in_height &&
                 x0 + p->kernel_w <= p->in_width;
    size_t k = 0;
    if (inside && p->kernel_h == 1 && p->kernel_w == 1) { /* pointwise: one tap a channel */
        size_t at = (size_t)y0 * (size_t)p->in_width + (size_t)x0;
        for (int32_t ic = 0; ic < p->in_channels; ++ic) {
            size_t src = (size_t)(p->in_index ? p->in_index[ic] : ic);
            column[k++] = input[src * plane + at];
        }
        zero_tail(column, k, depth);
        return;
    }
    if (inside) { /* no bounds checks: one pointer walks each channel's window */
        size_t at = (size_t)y0 * (size_t)p->in_width + (size_t)x0;
        size_t width = (size_t)p->in_width;
        int16_t *out = column;
        for (int32_t ic = 0; ic < p->in_channels; ++ic) {
            size_t src = (size_t)(p->in_index ? p->in_index[ic] : ic);
            const int16_t *row = input + src * plane + at;
            if (p->kernel_w == 3) {
                for (int32_t ky = 0; ky < p->kernel_h; ++ky, out += 3) {
                    const int16_t *line = row + (size_t)ky * width;
                    int16_t a = line[0], b = line[1], c = line[2];
                    out[0] = a;
                    out[1] = b;
                    out[2] = c;
                }
                continue;
            }
            for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
                const int16_t *line = row + (size_t)ky * width;
                for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
                    *out++ = line[kx];
                }
            }
        }
        zero_tail(column, (size_t)(out - column), depth);
        return;
    }
    /* A border pixel: taps kx in [x_lo, x_lo + x_span) of rows ky in [y_lo, y_hi) lie inside
     * the input, the rest is padding. One unsigned compare per tap selects. */
    int32_t x_lo = x0 < 0 ? -x0 : 0;
    int32_t x_hi = p->in_width - x0 < p->kernel_w ? p->in_width - x0 : p->kernel_w;
    int32_t y_lo = y0 < 0 ? -y0 : 0;
    int32_t y_hi = p->in_height - y0 < p->kernel_h ? p->in_height - y0 : p->kernel_h;
    uint32_t x_span = x_hi > x_lo ? (uint32_t)(x_hi - x_lo) : 0u;
    for (int32_t ic = 0; ic < p->in_channels; ++ic) {
        int32_t src = p->in_index ? p->in_index[ic] : ic;
        const int16_t *x = input + (size_t)src * plane;
        for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
            uint32_t span = ky >= y_lo && ky < y_hi ? x_span : 0u;
            ptrdiff_t base = (ptrdiff_t)(y0 + ky) * p->in_width + x0;
            for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
                column[k++] = (uint32_t)(kx - x_lo) < span ? x[base + kx] : (int16_t)0;
            }
        }
    }
    zero_tail(column, k, depth);
}

/* Both columns of pixels (pixel, pixel + 1) when they are horizontal neighbours of a 3-wide
 * kernel with stride_w 1 and both windows lie inside the input: each window row is 4 loads
 * and 6 stores. Returns 0 (and writes nothing) otherwise. */
static int gather_pair_3x3(const ajpq_conv_params_t *p, const int16_t *input, int32_t pixel,
                           int16_t *c0, int16_t *c1, size_t depth)
{
    int32_t oy = pixel / p->out_width;
    int32_t ox = pixel - oy * p->out_width;
    int32_t y0 = oy * p->stride_h - p->pad_h;
    int32_t x0 = ox * p->stride_w - p->pad_w;
    if (p->kernel_w != 3 || p->stride_w != 1 || ox + 1 >= p->out_width || y0 < 0 || x0 < 0 ||
        y0 + p->kernel_h > p->in_height || x0 + 4 > p->in_width) {
        return 0;
    }
    size_t width = (size_t)p->in_width;
    size_t plane = (size_t)p->in_height * width;
    size_t at = (size_t)y0 * width + (size_t)x0;
    int16_t *out0 = c0, *out1 = c1;
    for (int32_t ic = 0; ic < p->in_channels; ++ic) {
        size_t src = (size_t)(p->in_index ? p->in_index[ic] : ic);
        const int16_t *row = input + src * plane + at;
        for (int32_t ky = 0; ky < p->kernel_h; ++ky, out0 += 3, out1 += 3) {
            const int16_t *line = row + (size_t)ky * width;
            int16_t a = line[0], b = line[1], c = line[2], d = line[3];
            out0[0] = a;
            out0[1] = b;
            out0[2] = c;
            out1[0] = b;
            out1[1] = c;
            out1[2] = d;
        }
    }
    zero_tail(c0, (size_t)(out0 - c0), depth);
    zero_tail(c1, (size_t)(out1 - c1), depth);
    return 1;
}

static void widen_weights(const ajpq_conv_params_t *p, int16_t *weights, size_t depth)
{
    size_t taps = (size_t)p->in_channels * (size_t)p->kernel_h * (size_t)p->kernel_w;
    for (int32_t oc = 0; oc < p->out_channels; ++oc) {
        const int8_t *w = p->weight + (size_t)oc * taps;
        int16_t *row = weights + (size_t)oc * depth;
        size_t k = 0;
        for (; k < taps; ++k) {
            row[k] = w[k];
        }
        zero_tail(row, k, depth);
    }
}

/* acc[0..3] += (w0 . c0, w0 . c1, w1 . c0, w1 . c1) over depth values (a multiple of 4). */
static inline void dot_2x2(const int16_t *w0, const int16_t *w1, const int16_t *c0,
                           const int16_t *c1, size_t depth, int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
#if defined(__ARM_FEATURE_DSP)
    /* 4 taps an iteration: 8 word loads with post-increment, 8 SMLAD, subs, bne (18
     * instructions for 16 MACs); written in assembly because the compiler runs out of
     * registers (4 accumulators, 4 pointers, counter, 3 values) and spills. */
    size_t n = depth / 4u; /* >= 1: depth is a positive multiple of 4 */
    int32_t x, y, w;
    __asm volatile("1:\n\t"
                   "ldr %[x], [%[c0]], #4\n\t"
                   "ldr %[y], [%[c1]], #4\n\t"
                   "ldr %[w], [%[w0]], #4\n\t"
                   "smlad %[a00], %[x], %[w], %[a00]\n\t"
                   "smlad %[a01], %[y], %[w], %[a01]\n\t"
                   "ldr %[w], [%[w1]], #4\n\t"
                   "smlad %[a10], %[x], %[w], %[a10]\n\t"
                   "smlad %[a11], %[y], %[w], %[a11]\n\t"
                   "ldr %[x], [%[c0]], #4\n\t"
                   "ldr %[y], [%[c1]], #4\n\t"
                   "ldr %[w], [%[w0]], #4\n\t"
                   "smlad %[a00], %[x], %[w], %[a00]\n\t"
                   "smlad %[a01], %[y], %[w], %[a01]\n\t"
                   "ldr %[w], [%[w1]], #4\n\t"
                   "smlad %[a10], %[x], %[w], %[a10]\n\t"
                   "smlad %[a11], %[y], %[w], %[a11]\n\t"
                   "subs %[n], %[n], #1\n\t"
                   "bne 1b\n\t"
                   : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                     [c0] "+r"(c0), [c1] "+r"(c1), [w0] "+r"(w0), [w1] "+r"(w1), [n] "+r"(n),
                     [x] "=&r"(x), [y] "=&r"(y), [w] "=&r"(w)
                   : "m"(*(const int16_t(*)[depth])c0), "m"(*(const int16_t(*)[depth])c1),
                     "m"(*(const int16_t(*)[depth])w0), "m"(*(const int16_t(*)[depth])w1)
                   : "cc");
#else
    for (size_t k = 0; k < depth; ++k) {
        int32_t x = c0[k], y = c1[k], u = w0[k], v = w1[k];
        a00 += x * u;
        a01 += y * u;
        a10 += x * v;
        a11 += y * v;
    }
#endif
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* Writes one output: requantized int16 (in the layer's rounding mode), or the raw int32
 * accumulator (exact: it fits). */
static inline void store(void *output, size_t index, int32_t acc, const ajpq_requant_t *rq,
                         const channel_requant_t *r)
{
    if (rq->enabled && rq->rounding) {
        ((int16_t *)output)[index] = (int16_t)ajpq_requantize_double_i32(
            acc, r->multiplier, (int)r->shift_high + 32, rq->act_min, rq->act_max);
    } else if (rq->enabled) {
        ((int16_t *)output)[index] = (int16_t)requantize(acc, r, rq->act_min, rq->act_max);
    } else {
        ((int32_t *)output)[index] = acc;
    }
}

/* All pairs of output channels for the pixel pair whose columns are c0, c1 (requant enabled,
 * every shift >= 33); returns the number of channels done (even). Everything is a local
 * here, so the compiler keeps it in registers around the MAC loop. */
static inline int32_t pairs_of_channels(const int16_t *weights, const int32_t *bias,
                                        const channel_requant_t *requant, int32_t channels,
                                        size_t depth, const int16_t *c0, const int16_t *c1,
                                        int16_t *out, int32_t pixels, int clamp, int32_t lo,
                                        int32_t hi)
{
    int32_t oc = 0;
    for (; oc + 1 < channels; oc += 2, out += 2 * pixels, weights += 2 * depth) {
        int32_t acc[4] = {bias[oc], bias[oc], bias[oc + 1], bias[oc + 1]};
        dot_2x2(weights, weights + depth, c0, c1, depth, acc);
        const channel_requant_t *r = &requant[oc];
        out[0] = (int16_t)requantize_high(acc[0], r, clamp, lo, hi);
        out[1] = (int16_t)requantize_high(acc[1], r, clamp, lo, hi);
        out[pixels] = (int16_t)requantize_high(acc[2], r + 1, clamp, lo, hi);
        out[pixels + 1] = (int16_t)requantize_high(acc[3], r + 1, clamp, lo, hi);
    }
    return oc;
}

/* pairs_of_channels() specialised for each clamp (a constant in each copy). */
static int32_t pairs_any(const int16_t *weights, const int32_t *bias,
                         const channel_requant_t *requant, int32_t channels, size_t depth,
                         const int16_t *c0, const int16_t *c1, int16_t *out, int32_t pixels,
                         int32_t lo, int32_t hi)
{
    return pairs_of_channels(weights, bias, requant, channels, depth, c0, c1, out, pixels,
                             CLAMP_ANY, lo, hi);
}

static int32_t pairs_u8(const int16_t *weights, const int32_t *bias,
                        const channel_requant_t *requant, int32_t channels, size_t depth,
                        const int16_t *c0, const int16_t *c1, int16_t *out, int32_t pixels)
{
    return pairs_of_channels(weights, bias, requant, channels, depth, c0, c1, out, pixels,
                             CLAMP_U8, 0, 255);
}

static int32_t pairs_s8(const int16_t *weights, const int32_t *bias,
                        const channel_requant_t *requant, int32_t channels, size_t depth,
                        const int16_t *c0, const int16_t *c1, int16_t *out, int32_t pixels)
{
    return pairs_of_channels(weights, bias, requant, channels, depth, c0, c1, out, pixels,
                             CLAMP_S8, -128, 127);
}

void ajpq_conv_m4_s8(const ajpq_conv_params_t *params, const int16_t *input, void *output,
                     void *scratch)
{
    const ajpq_conv_params_t *p = params;
    size_t depth = conv_depth(p);
    int16_t *weights = (int16_t *)scratch;
    int16_t *col0 = weights + (size_t)p->out_channels * depth;
    int16_t *col1 = col0 + depth;
    channel_requant_t *requant = (channel_requant_t *)(void *)(col1 + depth);
    int32_t pixels = p->out_height * p->out_width;
    widen_weights(p, weights, depth);
    int all_high = prepare_requant(&p->requant, p->out_channels, requant);
    int32_t lo = p->requant.act_min, hi = p->requant.act_max;
    for (int32_t px = 0; px < pixels; px += 2) {
        int pair = px + 1 < pixels;
        const int16_t *second = pair ? col1 : col0;
        if (!pair || !gather_pair_3x3(p, input, px, col0, col1, depth)) {
            gather_column(p, input, px, col0, depth);
            if (pair) {
                gather_column(p, input, px + 1, col1, depth);
            }
        }
        int32_t oc = 0;
        if (all_high && pair) { /* the common case: 2 channels x 2 pixels, 32-bit requant */
            int16_t *out = (int16_t *)output + px;
            if (lo == 0 && hi == 255) {
                oc = pairs_u8(weights, p->bias, requant, p->out_channels, depth, col0, col1, out,
                              pixels);
            } else if (lo == -128 && hi == 127) {
                oc = pairs_s8(weights, p->bias, requant, p->out_channels, depth, col0, col1, out,
                              pixels);
            } else {
                oc = pairs_any(weights, p->bias, requant, p->out_channels, depth, col0, col1,
                               out, pixels, lo, hi);
            }
        }
        for (; oc < p->out_channels; oc += 2) {
            int both = oc + 1 < p->out_channels;
            int32_t oc1 = both ? oc + 1 : oc;
            const int16_t *w0 = weights + (size_t)oc * depth;
            const int16_t *w1 = weights + (size_t)oc1 * depth;
            int32_t acc[4] = {p->bias[oc], p->bias[oc], p->bias[oc1], p->bias[oc1]};
            dot_2x2(w0, w1, col0, second, depth, acc);
            size_t at0 = (size_t)oc * (size_t)pixels + (size_t)px;
            store(output, at0, acc[0], &p->requant, &requant[oc]);
            if (pair) {
                store(output, at0 + 1u, acc[1], &p->requant, &requant[oc]);
            }
            if (both) {
                size_t at1 = at0 + (size_t)pixels;
                store(output, at1, acc[2], &p->requant, &requant[oc1]);
                if (pair) {
                    store(output, at1 + 1u, acc[3], &p->requant, &requant[oc1]);
                }
            }
        }
    }
}
