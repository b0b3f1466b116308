/* Reference channel concatenation, optionally requantized over the joined channels. */
#include "ajpq_kernels.h"
#include "ajpq_requant.h"

size_t ajpq_concat_ref_s16_get_buffer_size(const ajpq_concat_params_t *params)
{
    (void)params;
    return 0;
}

void ajpq_concat_ref_s16(const ajpq_concat_params_t *params, const int16_t *const *inputs,
                         int16_t *output, void *scratch)
{
    (void)scratch;
    const ajpq_requant_t *rq = &params->requant;
    size_t size = (size_t)params->size;
    int32_t out_channel = 0;
    for (int32_t k = 0; k < params->num_inputs; ++k) {
        for (int32_t c = 0; c < params->channels[k]; ++c, ++out_channel) {
            const int16_t *x = inputs[k] + (size_t)c * size;
            int16_t *out = output + (size_t)out_channel * size;
            for (size_t i = 0; i < size; ++i) {
                if (!rq->enabled) {
                    out[i] = x[i];
                } else if (rq->rounding) { /* an int16 value: the 32-bit double path */
                    int32_t r = ajpq_requant_index(rq, out_channel);
                    out[i] = (int16_t)ajpq_requantize_double_i32(
                        x[i], rq->multiplier[r], rq->shift[r], rq->act_min, rq->act_max);
                } else {
                    out[i] = (int16_t)ajpq_requant_channel(x[i], rq, out_channel);
                }
            }
        }
    }
}
