/* Reference depthwise convolution (groups == channels): int16 CHW activations, int8 weights,
 * int64 accumulation (exact: int32 partial sums, ajpq_window.h). */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"
#include "ajpq_window.h"

size_t ajpq_dwconv_ref_s8_get_buffer_size(const ajpq_dwconv_params_t *params)
{
    (void)params;
    return 0;
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
            int32_t y0 = oy * params->stride_h - params->pad_h;
            for (int32_t ox = 0; ox < params->out_width; ++ox) {
                ajpq_window_t win =
                    ajpq_window(y0, ox * params->stride_w - params->pad_w, params->kernel_h,
                                params->kernel_w, params->in_height, params->in_width);
                int64_t acc = ajpq_window_dot(&win, x, params->in_width, w, params->kernel_w);
                ajpq_store_output(output, index++, params->bias[c] + acc, &params->requant, c);
            }
        }
    }
}
