/* Reference max pooling over int16 CHW activations; padding never wins (-infinity). */
#include "ajpq_kernels.h"

size_t ajpq_maxpool_ref_s16_get_buffer_size(const ajpq_pool_params_t *params)
{
    (void)params;
    return 0;
}

static int16_t maxpool_window(const ajpq_pool_params_t *p, const int16_t *x, int32_t oy,
                              int32_t ox)
{
    int16_t best = INT16_MIN; /* a window of padding only (pad >= kernel) is not supported */
    for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
        int32_t iy = oy * p->stride_h - p->pad_h + ky;
        if (iy < 0 || iy >= p->in_height) {
            continue;
        }
        for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
            int32_t ix = ox * p->stride_w - p->pad_w + kx;
            if (ix >= 0 && ix < p->in_width && x[iy * p->in_width + ix] > best) {
                best = x[iy * p->in_width + ix];
            }
        }
    }
    return best;
}

void ajpq_maxpool_ref_s16(const ajpq_pool_params_t *params, const int16_t *input,
                          int16_t *output, void *scratch)
{
    (void)scratch;
    size_t plane = (size_t)params->in_height * (size_t)params->in_width;
    size_t index = 0;
    for (int32_t c = 0; c < params->channels; ++c) {
        const int16_t *x = input + (size_t)c * plane;
        for (int32_t oy = 0; oy < params->out_height; ++oy) {
            for (int32_t ox = 0; ox < params->out_width; ++ox) {
                output[index++] = maxpool_window(params, x, oy, ox);
            }
        }
    }
}
