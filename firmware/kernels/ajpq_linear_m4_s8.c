/* Fully connected layer for the Cortex-M4 (DSP extension): same ABI and bit-exact results as
 * ajpq_linear_ref_s8.
 *
 * Algorithm: each weight is used once, so the weights stay int8 and are widened in
 * registers: one 32-bit load gives 4 weights, __SXTB16 gives (w0, w2) and __SXTB16 of the
 * word rotated by 8 gives (w1, w3). The input vector, used by every output, is reordered
 * once per call into the scratch arena to match: words (x0, x2), (x1, x3) per 4 inputs. Then
 * 4 MACs are one weight load, two SXTB16, one input LDRD and two __SMLAD. The last
 * in_features % 4 inputs are plain multiply-adds. Without __ARM_FEATURE_DSP a plain loop.
 *
 * Precondition: the accumulator fits int32, i.e. |bias| + in_features * max|x| * 128 < 2^31
 * (the reference accumulates in int64; the two agree whenever this holds).
 * Scratch: ajpq_linear_m4_s8_get_buffer_size() bytes, 4-byte aligned (0 without DSP).
 */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

size_t ajpq_linear_m4_s8_get_buffer_size(const ajpq_linear_params_t *params)
{
#if defined(__ARM_FEATURE_DSP)
    return (size_t)(params->in_features / 4) * 4u * sizeof(int16_t);
#else
    (void)params;
    return 0;
#endif
}

#if defined(__ARM_FEATURE_DSP)
/* One output: bias + w . x, with the reordered input pairs for the first `groups` * 4. */
static int32_t dot(const int8_t *w, const int16_t *x, const int16x2_t *pairs, int32_t groups,
                   int32_t n, int32_t acc)
{
    for (int32_t g = 0; g < groups; ++g) {
        uint32_t word;
        __builtin_memcpy(&word, w + 4 * g, sizeof word); /* one (unaligned) LDR */
        int16x2_t even = (int16x2_t)__sxtb16((int8x4_t)word);
        int16x2_t odd = (int16x2_t)__sxtb16((int8x4_t)((word >> 8) | (word << 24)));
        acc = __smlad(even, pairs[2 * g], acc);
        acc = __smlad(odd, pairs[2 * g + 1], acc);
    }
    for (int32_t i = 4 * groups; i < n; ++i) {
        acc += (int32_t)x[i] * (int32_t)w[i];
    }
    return acc;
}
#endif

void ajpq_linear_m4_s8(const ajpq_linear_params_t *params, const int16_t *input, void *output,
                       void *scratch)
{
    int32_t n = params->in_features;
#if defined(__ARM_FEATURE_DSP)
    int32_t groups = n / 4;
    int16x2_t *pairs = (int16x2_t *)scratch;
    for (int32_t g = 0; g < groups; ++g) {
        const int16_t *x = input + 4 * g;
        pairs[2 * g] = (int16x2_t)(((uint32_t)(uint16_t)x[2] << 16) | (uint16_t)x[0]);
        pairs[2 * g + 1] = (int16x2_t)(((uint32_t)(uint16_t)x[3] << 16) | (uint16_t)x[1]);
    }
#else
    (void)scratch;
#endif
    for (int32_t o = 0; o < params->out_features; ++o) {
        const int8_t *w = params->weight + (size_t)o * (size_t)n;
#if defined(__ARM_FEATURE_DSP)
        int32_t acc = dot(w, input, pairs, groups, n, params->bias[o]);
#else
        int32_t acc = params->bias[o];
        for (int32_t i = 0; i < n; ++i) {
            acc += (int32_t)input[i] * (int32_t)w[i];
        }
#endif
        ajpq_store_output(output, (size_t)o, acc, &params->requant, o);
    }
}
