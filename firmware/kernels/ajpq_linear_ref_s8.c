/* Reference fully connected layer: int16 input vector, int8 weights, int64 accumulation
 * (exact: int32 partial sums, ajpq_window.h). */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"
#include "ajpq_window.h"

size_t ajpq_linear_ref_s8_get_buffer_size(const ajpq_linear_params_t *params)
{
    (void)params;
    return 0;
}

void ajpq_linear_ref_s8(const ajpq_linear_params_t *params, const int16_t *input, void *output,
                        void *scratch)
{
    (void)scratch;
    for (int32_t o = 0; o < params->out_features; ++o) {
        const int8_t *w = params->weight + (size_t)o * (size_t)params->in_features;
        int64_t acc = params->bias[o] + ajpq_dot(input, w, params->in_features);
        ajpq_store_output(output, (size_t)o, acc, &params->requant, o);
    }
}
