/* Depthwise convolution for the Cortex-M4: same ABI and bit-exact results as
 * ajpq_dwconv_ref_s8.
 *
 * Algorithm: per channel, the requant constants and (for a 3x3 kernel) the nine weights are
 * loaded once into locals. Output pixels whose 3x3 window lies inside the input (the
 * interior, computed once per layer) take a fast path with no bounds checks, two pixels at a
 * time when stride_w is 1 (the pair shares its 3x4 input loads); border pixels, and every
 * pixel of a kernel other than 3x3, go through a generic window with bounds checks. Sums are
 * int32 multiply-adds, requantized with the 64-bit multiply exactly as the reference does
 * (in TFLite's double rounding, requant.rounding, always by ajpq_requantize_double: the
 * 32-bit single-rounding path is skipped).
 *
 * Precondition: the accumulator fits int32, i.e. |bias| + kernel_h * kernel_w * max|x| * 128
 * < 2^31 (always true for 8-bit activations and |bias| < 2^30).
 * Scratch: none (ajpq_dwconv_m4_s8_get_buffer_size() returns 0).
 */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"

size_t ajpq_dwconv_m4_s8_get_buffer_size(const ajpq_dwconv_params_t *params)
{
    (void)params;
    return 0;
}

/* The requantization of one channel, with its constants hoisted. */
typedef struct {
    int enabled;
    int double_rounding; /* TFLite's: ajpq_requantize_double, no 32-bit path */
    int32_t multiplier;
    uint32_t rounding_high; /* bits 32..63 of 2^(shift-1) + 2^62 */
    int32_t shift_high;     /* shift - 32; < 1 takes the general path */
    int32_t offset;         /* 2^(62 - shift) */
    int32_t lo;
    int32_t hi;
} channel_requant_t;

static channel_requant_t channel_requant(const ajpq_requant_t *rq, int32_t c)
{
    channel_requant_t r = {0, 0, 0, 0, 0, 0, 0, 0};
    if (rq->enabled) {
        int32_t at = ajpq_requant_index(rq, c);
        int32_t shift = rq->shift[at];
        r.enabled = 1;
        r.double_rounding = rq->rounding != 0;
        r.multiplier = rq->multiplier[at];
        r.shift_high = shift - 32;
        if (shift >= 33) {
            r.rounding_high = ((uint32_t)1 << (shift - 33)) + ((uint32_t)1 << 30);
            r.offset = (int32_t)1 << (62 - shift);
        }
        r.lo = rq->act_min;
        r.hi = rq->act_max;
    }
    return r;
}

/* Writes one output: the reference's requantization, or the raw int32 accumulator. With
 * shift >= 33 it runs in 32 bits: u = acc * multiplier + 2^(shift-1) + 2^62 lies in
 * (0, 2^63 + 2^61) because |acc * multiplier| < 2^62, so u is exact as uint64;
 * floor(u / 2^shift) = floor((acc * multiplier + 2^(shift-1)) / 2^shift) + 2^(62-shift), and
 * the constant's low word is zero, so only the product's high word is needed. */
static inline void store(void *output, size_t index, int32_t acc, const channel_requant_t *r)
{
    if (!r->enabled) {
        ((int32_t *)output)[index] = acc;
        return;
    }
    int32_t q;
    if (r->double_rounding) {
        q = ajpq_requantize_double_i32(acc, r->multiplier, (int)r->shift_high + 32, r->lo,
                                       r->hi);
    } else if (r->shift_high >= 1) {
        uint64_t product = (uint64_t)((int64_t)acc * r->multiplier);
        uint32_t high = (uint32_t)(product >> 32) + r->rounding_high;
        q = (int32_t)(high >> r->shift_high) - r->offset;
        q = q < r->lo ? r->lo : (q > r->hi ? r->hi : q);
    } else {
        q = ajpq_requantize(acc, r->multiplier, (int)r->shift_high + 32, r->lo, r->hi);
    }
    ((int16_t *)output)[index] = (int16_t)q;
}

/* Sum over the window of output (oy, ox), any kernel size: the taps inside the input are
 * the rectangle [y_lo, y_hi) x [x_lo, x_hi) of the kernel, found once per pixel. */
static int32_t window_sum(const ajpq_dwconv_params_t *p, const int16_t *x, const int8_t *w,
                          int32_t oy, int32_t ox)
{
    int32_t y0 = oy * p->stride_h - p->pad_h;
    int32_t x0 = ox * p->stride_w - p->pad_w;
    int32_t y_lo = y0 < 0 ? -y0 : 0;
    int32_t y_hi = p->in_height - y0 < p->kernel_h ? p->in_height - y0 : p->kernel_h;
    int32_t x_lo = x0 < 0 ? -x0 : 0;
    int32_t x_hi = p->in_width - x0 < p->kernel_w ? p->in_width - x0 : p->kernel_w;
    int32_t acc = 0;
    for (int32_t ky = y_lo; ky < y_hi; ++ky) {
        const int16_t *row = x + (size_t)(y0 + ky) * (size_t)p->in_width;
        const int8_t *taps = w + ky * p->kernel_w;
        for (int32_t kx = x_lo; kx < x_hi; ++kx) {
            acc += (int32_t)row[x0 + kx] * (int32_t)taps[kx];
        }
    }
    return acc;
}

/* First output index >= 0 whose window starts inside, and one past the last whose window
 * ends inside: [*lo, *hi) (empty when *hi <= *lo). */
static void interior(int32_t in, int32_t out, int32_t kernel, int32_t stride, int32_t pad,
                     int32_t *lo, int32_t *hi)
{
    *lo = (pad + stride - 1) / stride;
    int32_t last = in - kernel + pad; /* o * stride <= last */
    *hi = last < 0 ? 0 : last / stride + 1;
    if (*hi > out) {
        *hi = out;
    }
    if (*lo > *hi) {
        *lo = *hi;
    }
}

/* One output row of a 3x3 kernel between interior columns [lo, hi); `top` is the input row
 * of the window's first line (lo * stride >= pad, so every tap lies inside it). */
static void row_3x3(const int16_t *top, int32_t in_width, int32_t stride, int32_t pad,
                    const int8_t *w, int32_t bias, int32_t lo, int32_t hi, void *output,
                    size_t index, const channel_requant_t *r)
{
    const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4];
    const int32_t w5 = w[5], w6 = w[6], w7 = w[7], w8 = w[8];
    const int16_t *a = top + (size_t)(lo * stride - pad);
    const int16_t *b = a + in_width;
    const int16_t *c = b + in_width;
    int32_t ox = lo;
    if (stride == 1) {
        for (; ox + 1 < hi; ox += 2, a += 2, b += 2, c += 2, index += 2) {
            int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
            int32_t s0 = bias + a0 * w0 + a1 * w1 + a2 * w2;
            int32_t s1 = bias + a1 * w0 + a2 * w1 + a3 * w2;
            int32_t b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
            s0 += b0 * w3 + b1 * w4 + b2 * w5;
            s1 += b1 * w3 + b2 * w4 + b3 * w5;
            int32_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
            s0 += c0 * w6 + c1 * w7 + c2 * w8;
            s1 += c1 * w6 + c2 * w7 + c3 * w8;
            store(output, index, s0, r);
            store(output, index + 1u, s1, r);
        }
    }
    for (; ox < hi; ++ox, a += stride, b += stride, c += stride, ++index) {
        int32_t s = bias + a[0] * w0 + a[1] * w1 + a[2] * w2;
        s += b[0] * w3 + b[1] * w4 + b[2] * w5;
        s += c[0] * w6 + c[1] * w7 + c[2] * w8;
        store(output, index, s, r);
    }
}

static void channel(const ajpq_dwconv_params_t *p, const int16_t *x, const int8_t *w,
                    int32_t bias, void *output, size_t index, const channel_requant_t *r)
{
    int32_t y_lo = 0, y_hi = 0, x_lo = 0, x_hi = 0;
    int fast = p->kernel_h == 3 && p->kernel_w == 3;
    if (fast) {
        interior(p->in_height, p->out_height, 3, p->stride_h, p->pad_h, &y_lo, &y_hi);
        interior(p->in_width, p->out_width, 3, p->stride_w, p->pad_w, &x_lo, &x_hi);
    }
    for (int32_t oy = 0; oy < p->out_height; ++oy) {
        int row_fast = fast && oy >= y_lo && oy < y_hi && x_lo < x_hi;
        int32_t skip_lo = row_fast ? x_lo : p->out_width;
        int32_t skip_hi = row_fast ? x_hi : p->out_width;
        for (int32_t ox = 0; ox < skip_lo; ++ox) {
            store(output, index + (size_t)ox, bias + window_sum(p, x, w, oy, ox), r);
        }
        if (row_fast) {
            size_t iy = (size_t)(oy * p->stride_h - p->pad_h);
            const int16_t *top = x + iy * (size_t)p->in_width;
            row_3x3(top, p->in_width, p->stride_w, p->pad_w, w, bias, x_lo, x_hi, output,
                    index + (size_t)x_lo, r);
        }
        for (int32_t ox = skip_hi; ox < p->out_width; ++ox) {
            store(output, index + (size_t)ox, bias + window_sum(p, x, w, oy, ox), r);
        }
        index += (size_t)p->out_width;
    }
}

void ajpq_dwconv_m4_s8(const ajpq_dwconv_params_t *params, const int16_t *input, void *output,
                       void *scratch)
{
    (void)scratch;
    size_t plane = (size_t)params->in_height * (size_t)params->in_width;
    size_t taps = (size_t)params->kernel_h * (size_t)params->kernel_w;
    size_t out_plane = (size_t)params->out_height * (size_t)params->out_width;
    for (int32_t c = 0; c < params->channels; ++c) {
        int32_t src = params->in_index ? params->in_index[c] : c;
        channel_requant_t r = channel_requant(&params->requant, c);
        channel(params, input + (size_t)src * plane, params->weight + (size_t)c * taps,
                params->bias[c], output, (size_t)c * out_plane, &r);
    }
}
