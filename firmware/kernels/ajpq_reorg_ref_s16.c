/* Reference reorg (space-to-depth): out channel (h_off * stride + w_off) * C + c. */
#include "ajpq_kernels.h"

size_t ajpq_reorg_ref_s16_get_buffer_size(const ajpq_reorg_params_t *params)
{
    (void)params;
    return 0;
}

void ajpq_reorg_ref_s16(const ajpq_reorg_params_t *params, const int16_t *input,
                        int16_t *output, void *scratch)
{
    (void)scratch;
    int32_t s = params->stride;
    int32_t out_h = params->in_height / s;
    int32_t out_w = params->in_width / s;
    size_t index = 0;
    for (int32_t h_off = 0; h_off < s; ++h_off) {
        for (int32_t w_off = 0; w_off < s; ++w_off) {
            for (int32_t c = 0; c < params->channels; ++c) {
                const int16_t *x = input + (size_t)c * (size_t)params->in_height *
                                               (size_t)params->in_width;
                for (int32_t y = 0; y < out_h; ++y) {
                    const int16_t *row = x + (size_t)(y * s + h_off) * (size_t)params->in_width;
                    for (int32_t xo = 0; xo < out_w; ++xo) {
                        output[index++] = row[xo * s + w_off];
                    }
                }
            }
        }
    }
}
