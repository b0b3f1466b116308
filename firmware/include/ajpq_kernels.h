/* ajpq_kernels.h - params structs and prototypes of the ajpq MCU kernels.
 *
 * Storage and ABI (shared by every kernel, reference or optimized):
 *  - Activations are int16_t, CHW, batch 1. int16 holds both uint8 (0..255) and int8
 *    activations, and any bit-width up to 8 of either sign, so one storage type serves all.
 *  - Weights are int8_t: conv [out][in][kh][kw], depthwise [channels][kh][kw],
 *    linear [out][in]. Biases are int32_t, one per output channel.
 *  - Requantization is per output channel (or per tensor, one multiplier and shift for
 *    every channel, when requant.per_tensor is set): out = clamp((acc * multiplier[c] +
 *    2^(shift[c]-1)) >> shift[c], act_min, act_max) with shift in 1..62
 *    (sdk/graph/requant.py's requantize, ajpq's single rounding); act_min..act_max lies
 *    within int16. A layer with requant.rounding set (a graph quantized with
 *    target="tflite") rounds as TFLite does instead: ajpq_requantize_double
 *    (kernels/ajpq_requant.h, requant.py's requantize_double), shift in 0..62 (below 31 the
 *    accumulator is shifted left first). A layer whose
 *    requant.enabled is 0 (the head) writes the raw accumulators as int32_t instead (the
 *    low 32 bits: exact while the accumulator fits int32); its `output` argument
 *    then points to int32_t.
 *  - Each kernel takes one const params struct, its input(s), its output and a scratch
 *    pointer into the caller's arena of at least ..._get_buffer_size(params) bytes
 *    (NULL is allowed when that size is 0). Kernels never allocate.
 *  - Accumulators are int64_t; the caller guarantees that acc * multiplier stays within
 *    int64 (true for int8/uint8 layers: |acc| < 2^31 and multiplier < 2^31). Outside that
 *    range the result wraps modulo 2^64, exactly as the golden numpy executor does.
 *  - Output sizes (out_height, out_width) are given by the caller, computed as
 *    (in + 2 * pad - kernel) / stride + 1.
 */
#ifndef AJPQ_KERNELS_H
#define AJPQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t enabled;           /* 0: no requantization; the kernel's output is raw */
    const int32_t *multiplier; /* [channels], each in [0, 2^31) */
    const int8_t *shift;       /* [channels], each in 1..62 (0..62 with double rounding) */
    int32_t act_min;
    int32_t act_max;
    int32_t rounding; /* 0: ajpq's single rounding, 1: TFLite's double rounding */
    int32_t per_tensor; /* 1: multiplier[0] and shift[0] serve every channel (one entry) */
} ajpq_requant_t;

/* Dense convolution (groups == 1), zero padding. */
typedef struct {
    int32_t in_channels; /* channels the conv reads (after the in_index gather) */
    int32_t in_height;
    int32_t in_width;
    int32_t out_channels;
    int32_t out_height;
    int32_t out_width;
    int32_t kernel_h;
    int32_t kernel_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;
    int32_t pad_w;
    const int32_t *in_index; /* NULL, or [in_channels] channel numbers into the input tensor */
    const int8_t *weight;    /* [out_channels][in_channels][kernel_h][kernel_w] */
    const int32_t *bias;     /* [out_channels] */
    ajpq_requant_t requant;
} ajpq_conv_params_t;

size_t ajpq_conv_ref_s8_get_buffer_size(const ajpq_conv_params_t *params);
/* output: int16_t[out_channels][out_height][out_width], or int32_t when !requant.enabled */
void ajpq_conv_ref_s8(const ajpq_conv_params_t *params, const int16_t *input, void *output,
                      void *scratch);

/* Depthwise convolution (groups == channels), zero padding. */
typedef struct {
    int32_t channels;
    int32_t in_height;
    int32_t in_width;
    int32_t out_height;
    int32_t out_width;
    int32_t kernel_h;
    int32_t kernel_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;
    int32_t pad_w;
    const int32_t *in_index; /* NULL, or [channels] channel numbers into the input tensor */
    const int8_t *weight;    /* [channels][kernel_h][kernel_w] */
    const int32_t *bias;     /* [channels] */
    ajpq_requant_t requant;
} ajpq_dwconv_params_t;

size_t ajpq_dwconv_ref_s8_get_buffer_size(const ajpq_dwconv_params_t *params);
/* output: int16_t[channels][out_height][out_width], or int32_t when !requant.enabled */
void ajpq_dwconv_ref_s8(const ajpq_dwconv_params_t *params, const int16_t *input,
                        void *output, void *scratch);

/* Max and average pooling. Maxpool pads with -infinity; avgpool has no padding (pad_* must
 * be 0) and requantizes the window sum (or writes it raw as int32_t). */
typedef struct {
    int32_t channels;
    int32_t in_height;
    int32_t in_width;
    int32_t out_height;
    int32_t out_width;
    int32_t kernel_h;
    int32_t kernel_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;
    int32_t pad_w;
    ajpq_requant_t requant; /* avgpool only */
} ajpq_pool_params_t;

size_t ajpq_maxpool_ref_s16_get_buffer_size(const ajpq_pool_params_t *params);
void ajpq_maxpool_ref_s16(const ajpq_pool_params_t *params, const int16_t *input,
                          int16_t *output, void *scratch);

size_t ajpq_avgpool_ref_s16_get_buffer_size(const ajpq_pool_params_t *params);
/* output: int16_t, or int32_t when !requant.enabled */
void ajpq_avgpool_ref_s16(const ajpq_pool_params_t *params, const int16_t *input,
                          void *output, void *scratch);

/* Residual add: out[c] = clamp((a[index_a[c]] * multiplier_a[c] + b[index_b[c]] *
 * multiplier_b[c] + 2^(shift[c]-1)) >> shift[c], act_min, act_max).
 * With rounding set (TFLite's int8 ADD, golden's _add_double), with D the double-rounding
 * rescale of ajpq_requant.h (unclamped): out[c] = clamp(D(D(a << left_shift,
 * multiplier_a[c], shift_a[c]) + D(b << left_shift, multiplier_b[c], shift_b[c]),
 * multiplier[c], shift[c]), act_min, act_max), every shift in 0..62. The fields after
 * act_max are read only then (0 / NULL otherwise). */
typedef struct {
    int32_t channels; /* output channels */
    int32_t size;     /* elements per channel (height * width, 1 for vectors) */
    const int32_t *index_a; /* NULL (identity) or [channels] channel numbers into a */
    const int32_t *index_b; /* NULL (identity) or [channels] channel numbers into b */
    const int32_t *multiplier_a; /* [channels] */
    const int32_t *multiplier_b; /* [channels] */
    const int8_t *shift;         /* [channels], each in 1..62: the sum's (output) shift */
    int32_t act_min;
    int32_t act_max;
    int32_t rounding;          /* 0: ajpq's single rounding, 1: TFLite's double rounding */
    const int8_t *shift_a;     /* [channels] (double rounding) */
    const int8_t *shift_b;     /* [channels] (double rounding) */
    const int32_t *multiplier; /* [channels], the sum's (output) multiplier (double) */
    int32_t left_shift;        /* 0..62, both inputs' left shift (double; TFLite: 20) */
} ajpq_add_params_t;

size_t ajpq_add_ref_s16_get_buffer_size(const ajpq_add_params_t *params);
void ajpq_add_ref_s16(const ajpq_add_params_t *params, const int16_t *input_a,
                      const int16_t *input_b, int16_t *output, void *scratch);

/* Channel concatenation of num_inputs tensors of equal spatial size, optionally
 * requantized over the joined channels (requant.enabled == 0: a plain copy). */
typedef struct {
    int32_t num_inputs;
    const int32_t *channels; /* [num_inputs] */
    int32_t size;            /* elements per channel (height * width) */
    ajpq_requant_t requant;  /* indexed by output channel */
} ajpq_concat_params_t;

size_t ajpq_concat_ref_s16_get_buffer_size(const ajpq_concat_params_t *params);
void ajpq_concat_ref_s16(const ajpq_concat_params_t *params, const int16_t *const *inputs,
                         int16_t *output, void *scratch);

/* Space-to-depth: out[(h_off * stride + w_off) * channels + c][y][x] =
 * in[c][y * stride + h_off][x * stride + w_off]; in_height and in_width divisible by
 * stride. */
typedef struct {
    int32_t channels;
    int32_t in_height;
    int32_t in_width;
    int32_t stride;
} ajpq_reorg_params_t;

size_t ajpq_reorg_ref_s16_get_buffer_size(const ajpq_reorg_params_t *params);
void ajpq_reorg_ref_s16(const ajpq_reorg_params_t *params, const int16_t *input,
                        int16_t *output, void *scratch);

/* Fully connected layer. */
typedef struct {
    int32_t in_features;
    int32_t out_features;
    const int8_t *weight; /* [out_features][in_features] */
    const int32_t *bias;  /* [out_features] */
    ajpq_requant_t requant;
} ajpq_linear_params_t;

size_t ajpq_linear_ref_s8_get_buffer_size(const ajpq_linear_params_t *params);
/* output: int16_t[out_features], or int32_t when !requant.enabled */
void ajpq_linear_ref_s8(const ajpq_linear_params_t *params, const int16_t *input, void *output,
                        void *scratch);

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_KERNELS_H */

/* Optimized kernels for the Cortex-M4 (DSP extension; a portable C path elsewhere): the same
 * params structs and results as the reference kernels, given that the accumulator fits int32
 * (see each kernel's file). Scratch: ..._get_buffer_size(params) bytes, 4-byte aligned. */
#ifndef AJPQ_KERNELS_M4_H
#define AJPQ_KERNELS_M4_H

#ifdef __cplusplus
extern "C" {
#endif

size_t ajpq_conv_m4_s8_get_buffer_size(const ajpq_conv_params_t *params);
void ajpq_conv_m4_s8(const ajpq_conv_params_t *params, const int16_t *input, void *output,
                     void *scratch);

size_t ajpq_dwconv_m4_s8_get_buffer_size(const ajpq_dwconv_params_t *params);
void ajpq_dwconv_m4_s8(const ajpq_dwconv_params_t *params, const int16_t *input,
                       void *output, void *scratch);

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_KERNELS_M4_H */

/* Fully connected layer for the Cortex-M4 (appended; see the block above). */
#ifndef AJPQ_KERNELS_M4_LINEAR_H
#define AJPQ_KERNELS_M4_LINEAR_H

#ifdef __cplusplus
extern "C" {
#endif

size_t ajpq_linear_m4_s8_get_buffer_size(const ajpq_linear_params_t *params);
void ajpq_linear_m4_s8(const ajpq_linear_params_t *params, const int16_t *input, void *output,
                       void *scratch);

#ifdef __cplusplus
}
#endif

#endif /* AJPQ_KERNELS_M4_LINEAR_H */
