/* Reference residual add with per-channel rescaling of both operands and channel gathers. */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"

size_t ajpq_add_ref_s16_get_buffer_size(const ajpq_add_params_t *params)
{
    (void)params;
    return 0;
}

void ajpq_add_ref_s16(const ajpq_add_params_t *params, const int16_t *input_a,
                      const int16_t *input_b, int16_t *output, void *scratch)
{
    (void)scratch;
    size_t size = (size_t)params->size;
    for (int32_t c = 0; c < params->channels; ++c) {
        const int16_t *a = input_a + (size_t)(params->index_a ? params->index_a[c] : c) * size;
        const int16_t *b = input_b + (size_t)(params->index_b ? params->index_b[c] : c) * size;
        int shift = params->shift[c];
        int64_t rounding = (int64_t)1 << (shift - 1);
        int16_t *out = output + (size_t)c * size;
        for (size_t i = 0; i < size; ++i) {
            int64_t sum = ajpq_mul_add_wrap(a[i], params->multiplier_a[c],
                                            ajpq_mul_add_wrap(b[i], params->multiplier_b[c],
                                                              rounding));
            out[i] = (int16_t)ajpq_clamp(ajpq_shift_right_floor(sum, shift), params->act_min,
                                         params->act_max);
        }
    }
}
