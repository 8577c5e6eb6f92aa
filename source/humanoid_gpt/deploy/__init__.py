"""Deployment: a distilled student exported to ONNX (with the metadata a robot needs) and built into a TensorRT
engine. Stage 5 of the pipeline (see docs/architecture.md)."""
