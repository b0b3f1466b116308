/* Reference residual add with per-channel rescaling of both operands and channel gathers:
 * ajpq's single rounding, or TFLite's int8 ADD in double rounding (params->rounding). */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"

size_t ajpq_add_ref_s16_get_buffer_size(const ajpq_add_params_t *params)
{
    (void)params;
    return 0;
}

/* TFLite's ADD of one channel (golden's _add_double): both inputs widened by 2^left_shift,
 * each rescaled (double rounding, unclamped), the sum rescaled to the output and clamped.
 * The products and the sum wrap modulo 2^64 as numpy's int64 does (never UB). */
static void add_double(const ajpq_add_params_t *p, int32_t c, const int16_t *a,
                       const int16_t *b, int16_t *out, size_t size)
{
    int64_t left = (int64_t)1 << p->left_shift;
    int32_t multiplier_a = p->multiplier_a[c], multiplier_b = p->multiplier_b[c];
    int shift_a = p->shift_a[c], shift_b = p->shift_b[c];
    for (size_t i = 0; i < size; ++i) {
        int64_t scaled_a = ajpq_rescale_double(ajpq_mul_add_wrap(a[i], left, 0), multiplier_a,
                                               shift_a);
        int64_t scaled_b = ajpq_rescale_double(ajpq_mul_add_wrap(b[i], left, 0), multiplier_b,
                                               shift_b);
        out[i] = (int16_t)ajpq_requantize_double(ajpq_mul_add_wrap(scaled_a, 1, scaled_b),
                                                 p->multiplier[c], p->shift[c], p->act_min,
                                                 p->act_max);
    }
}

void ajpq_add_ref_s16(const ajpq_add_params_t *params, const int16_t *input_a,
                      const int16_t *input_b, int16_t *output, void *scratch)
{
    (void)scratch;
    size_t size = (size_t)params->size;
    for (int32_t c = 0; c < params->channels; ++c) {
        const int16_t *a = input_a + (size_t)(params->index_a ? params->index_a[c] : c) * size;
        const int16_t *b = input_b + (size_t)(params->index_b ? params->index_b[c] : c) * size;
        int16_t *out = output + (size_t)c * size;
        if (params->rounding) {
            add_double(params, c, a, b, out, size);
            continue;
        }
        int shift = params->shift[c];
        int64_t rounding = (int64_t)1 << (shift - 1);
        for (size_t i = 0; i < size; ++i) {
            int64_t sum = ajpq_mul_add_wrap(a[i], params->multiplier_a[c],
                                            ajpq_mul_add_wrap(b[i], params->multiplier_b[c],
                                                              rounding));
            out[i] = (int16_t)ajpq_clamp(ajpq_shift_right_floor(sum, shift), params->act_min,
                                         params->act_max);
        }
    }
}
