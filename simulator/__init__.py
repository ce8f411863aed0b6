"""precision-sim: cycle-level simulation of bit-parallel and bit-serial DNN accelerators under
per-layer reduced precision, from real tensors."""
__version__ = "0.1.0"
