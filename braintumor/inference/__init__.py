"""Inference: load a trained model (checkpoint or ONNX), predict, explain (Grad-CAM),
export to ONNX, and the local web page."""
