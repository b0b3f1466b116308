/* Reference dense convolution: int16 CHW activations, int8 weights, int64 accumulation. */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"

size_t ajpq_conv_ref_s8_get_buffer_size(const ajpq_conv_params_t *params)
{
    (void)params;
    return 0;
}

static int64_t conv_window(const ajpq_conv_params_t *p, const int16_t *input, int32_t oc,
                           int32_t oy, int32_t ox)
{
    int64_t acc = p->bias[oc];
    int32_t plane = p->in_height * p->in_width;
    for (int32_t ic = 0; ic < p->in_channels; ++ic) {
        int32_t src = p->in_index ? p->in_index[ic] : ic;
        const int16_t *x = input + (size_t)src * (size_t)plane;
        const int8_t *w =
            p->weight + ((size_t)oc * (size_t)p->in_channels + (size_t)ic) *
                            (size_t)(p->kernel_h * p->kernel_w);
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
    }
    return acc;
}

void ajpq_conv_ref_s8(const ajpq_conv_params_t *params, const int16_t *input, void *output,
                      void *scratch)
{
    (void)scratch;
    size_t index = 0;
    for (int32_t oc = 0; oc < params->out_channels; ++oc) {
        for (int32_t oy = 0; oy < params->out_height; ++oy) {
            for (int32_t ox = 0; ox < params->out_width; ++ox) {
                int64_t acc = conv_window(params, input, oc, oy, ox);
                ajpq_store_output(output, index++, acc, &params->requant, oc);
            }
        }
    }
}
