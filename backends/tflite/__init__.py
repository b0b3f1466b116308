"""The TensorFlow Lite backend (issue 15, in progress): .tflite flatbuffers that the TFLM
interpreter runs bit-exactly. Today: the flatbuffer writer (``flatbuffer``) and TFLite's
double-rounding requantization (``ajpq.graph.requant.requantize_double``), checked against
the real TFLM interpreter; the HwGraph exporter comes next."""
