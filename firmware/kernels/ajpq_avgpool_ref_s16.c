/* Reference average pooling: sums each window (no padding) and requantizes the sum. */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"

size_t ajpq_avgpool_ref_s16_get_buffer_size(const ajpq_pool_params_t *params)
{
    (void)params;
    return 0;
}

void ajpq_avgpool_ref_s16(const ajpq_pool_params_t *params, const int16_t *input,
                          void *output, void *scratch)
{
    (void)scratch;
    const ajpq_pool_params_t *p = params;
    size_t plane = (size_t)p->in_height * (size_t)p->in_width;
    size_t index = 0;
    for (int32_t c = 0; c < p->channels; ++c) {
        const int16_t *x = input + (size_t)c * plane;
        for (int32_t oy = 0; oy < p->out_height; ++oy) {
            for (int32_t ox = 0; ox < p->out_width; ++ox) {
                int64_t sum = 0;
                for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
                    const int16_t *row = x + (size_t)(oy * p->stride_h + ky) * (size_t)p->in_width;
                    for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
                        sum += row[ox * p->stride_w + kx];
                    }
                }
                ajpq_store_output(output, index++, sum, &p->requant, c);
            }
        }
    }
}
