/* A stand-in for the generated ajpq_model.h: the fuzzed server (fuzz_server.c) needs only
 * the sizes and the model API; the weights CRC is a variable the harness sets. */
#ifndef AJPQ_MODEL_H
#define AJPQ_MODEL_H

#include <stdint.h>

#define AJPQ_MODEL_HASH "fuzz0000fuzz0000"
#define AJPQ_MODEL_WEIGHTS_CRC ajpq_fuzz_weights_crc
#define AJPQ_MODEL_INPUT_ELEMENTS 64u
#define AJPQ_MODEL_OUTPUT_ELEMENTS 16u
#define AJPQ_MODEL_OUTPUT_INT32 1
#define AJPQ_MODEL_LAYERS 3u

extern uint32_t ajpq_fuzz_weights_crc;
extern uint32_t (*ajpq_model_clock)(void);
extern uint32_t ajpq_model_layer_ticks[AJPQ_MODEL_LAYERS];
extern uint32_t ajpq_model_decode_ticks[AJPQ_MODEL_LAYERS];
extern uint32_t ajpq_model_faults;

void ajpq_model_set_input(const uint8_t *pixels);
void ajpq_model_run(void);
void ajpq_model_get_output(int32_t *out);

#endif
