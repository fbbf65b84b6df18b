"""Inference engines behind one protocol. Only engine/vllm.py imports vllm."""
