"""The TensorFlow Lite backend: .tflite flatbuffers that the TFLM interpreter runs bit-exactly
(``backend``), written from a HwGraph quantized with ``target="tflite"`` (``export``) by the
schema's object API (``flatbuffer``); TFLM itself, its arena, alignment and LUT compression
(``tflm``)."""
