/* Reference depthwise convolution (groups == channels): int16 CHW activations, int8 weights. */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"

size_t ajpq_dwconv_ref_s8_get_buffer_size(const ajpq_dwconv_params_t *params)
{
    (void)params;
    return 0;
}

static int64_t dwconv_window(const ajpq_dwconv_params_t *p, const int16_t *x, const int8_t *w,
                             int32_t oy, int32_t ox)
{
    int64_t acc = 0;
    for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
        int32_t iy = oy * p->stride_h - p->pad_h + ky;
        if (iy < 0 || iy >= p->in_height) {
            continue;
        }
        for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
            int32_t ix = ox * p->stride_w - p->pad_w + kx;
            if (ix < 0 || ix >= p->in_width) {
                continue;
            }
            acc += (int32_t)x[iy * p->in_width + ix] * (int32_t)w[ky * p->kernel_w + kx];
        }
    }
    return acc;
}

void ajpq_dwconv_ref_s8(const ajpq_dwconv_params_t *params, const int16_t *input,
                        void *output, void *scratch)
{
    (void)scratch;
    size_t plane = (size_t)params->in_height * (size_t)params->in_width;
    size_t taps = (size_t)params->kernel_h * (size_t)params->kernel_w;
    size_t index = 0;
    for (int32_t c = 0; c < params->channels; ++c) {
        int32_t src = params->in_index ? params->in_index[c] : c;
        const int16_t *x = input + (size_t)src * plane;
        const int8_t *w = params->weight + (size_t)c * taps;
        for (int32_t oy = 0; oy < params->out_height; ++oy) {
            for (int32_t ox = 0; ox < params->out_width; ++ox) {
                int64_t acc = params->bias[c] + dwconv_window(params, x, w, oy, ox);
                ajpq_store_output(output, index++, acc, &params->requant, c);
            }
        }
    }
}
