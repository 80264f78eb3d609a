"""``msn.cuda.is_available()``: whether tensors can be moved to ``"cuda"``."""
from .backend import cuda_is_available as is_available

__all__ = ["is_available"]
