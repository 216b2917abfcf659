"""The till service: an ONNX export served over HTTP (ONNX Runtime, FastAPI); no JAX, no TensorFlow."""
