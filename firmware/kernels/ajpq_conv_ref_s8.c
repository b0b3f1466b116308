/* Reference dense convolution: int16 CHW activations, int8 weights, int64 accumulation
 * (exact: int32 partial sums, ajpq_window.h). */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"
#include "ajpq_window.h"

size_t ajpq_conv_ref_s8_get_buffer_size(const ajpq_conv_params_t *params)
{
    (void)params;
    return 0;
}

/* Input plane of the conv's channel ic (after the in_index gather). */
static const int16_t *in_plane(const ajpq_conv_params_t *p, const int16_t *input, int32_t ic)
{
    int32_t src = p->in_index ? p->in_index[ic] : ic;
    return input + (size_t)src * (size_t)p->in_height * (size_t)p->in_width;
}

/* A window of one tap per channel (a 1x1 kernel, or a window clipped to one tap): the input
 * channels at offset `at` of their planes against each channel's weight at w, in int32 runs
 * of AJPQ_I32_PRODUCTS channels. */
static int64_t one_tap(const ajpq_conv_params_t *p, const int16_t *input, const int8_t *w,
                       size_t at)
{
    size_t plane = (size_t)p->in_height * (size_t)p->in_width;
    size_t stride = (size_t)p->kernel_h * (size_t)p->kernel_w;
    int64_t acc = 0;
    for (int32_t first = 0; first < p->in_channels; first += AJPQ_I32_PRODUCTS) {
        int32_t last = ajpq_min_i32(p->in_channels, first + AJPQ_I32_PRODUCTS);
        int32_t sum = 0;
        for (int32_t ic = first; ic < last; ++ic) {
            int32_t src = p->in_index ? p->in_index[ic] : ic;
            sum += (int32_t)input[(size_t)src * plane + at] * (int32_t)w[(size_t)ic * stride];
        }
        acc += sum;
    }
    return acc;
}

/* The window's sum over every input channel against output channel oc's weights: channels
 * gathered in int32 while their products number at most AJPQ_I32_PRODUCTS. */
static int64_t conv_window(const ajpq_conv_params_t *p, const int16_t *input, int32_t oc,
                           const ajpq_window_t *win)
{
    int32_t kernel_taps = p->kernel_h * p->kernel_w;
    const int8_t *w = p->weight + (size_t)oc * (size_t)p->in_channels * (size_t)kernel_taps;
    if (win->taps == 0) {
        return 0;
    }
    if (win->taps == 1) {
        return one_tap(p, input, w + win->tap, win->at);
    }
    int64_t acc = 0;
    if (win->taps > AJPQ_I32_PRODUCTS) {
        for (int32_t ic = 0; ic < p->in_channels; ++ic, w += kernel_taps) {
            acc += ajpq_window_dot(win, in_plane(p, input, ic), p->in_width, w, p->kernel_w);
        }
        return acc;
    }
    int32_t run = AJPQ_I32_PRODUCTS / win->taps; /* channels per int32 sum */
    for (int32_t first = 0; first < p->in_channels; first += run) {
        int32_t last = ajpq_min_i32(p->in_channels, first + run);
        int32_t sum = 0;
        for (int32_t ic = first; ic < last; ++ic, w += kernel_taps) {
            const int16_t *x = in_plane(p, input, ic) + win->at;
            sum += ajpq_window_dot_i32(win, x, p->in_width, w + win->tap, p->kernel_w);
        }
        acc += sum;
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
            int32_t y0 = oy * params->stride_h - params->pad_h;
            for (int32_t ox = 0; ox < params->out_width; ++ox) {
                ajpq_window_t win =
                    ajpq_window(y0, ox * params->stride_w - params->pad_w, params->kernel_h,
                                params->kernel_w, params->in_height, params->in_width);
                int64_t acc = params->bias[oc] + conv_window(params, input, oc, &win);
                ajpq_store_output(output, index++, acc, &params->requant, oc);
            }
        }
    }
}
