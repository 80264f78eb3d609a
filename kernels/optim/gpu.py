"""Adam's update on a GPU: the CUDA C kernel of ``adam.cu``, one launch per parameter, through CuPy."""
import numpy as np

from .. import cuda_c
from ..cuda_c import Launch, blocks, c_type

SOURCE = "optim/adam.cu"
#: enough blocks to fill any current GPU; a larger parameter is covered by the kernel's grid-stride loop
MAX_BLOCKS = 1024


def adam_launch(p, g, m, v, lr, b1, b2, eps, correction1, correction2, weight_decay):
    """The scalars are cast to the parameter's dtype: a float32 parameter is updated in float32."""
    scalar = p.dtype.type
    grid = (min(blocks(p.size), MAX_BLOCKS), 1, 1)
    args = (p, g, m, v) + tuple(scalar(s) for s in (lr, b1, b2, eps, correction1, correction2, weight_decay))
    return Launch(SOURCE, f"adam_update<{c_type(p.dtype)}>", grid, (cuda_c.THREADS, 1, 1), args + (np.int64(p.size),))


def adam_update_gpu(p, g, m, v, lr, b1, b2, eps, correction1, correction2, weight_decay):
    if p.size:
        cuda_c.run(adam_launch(p, g, m, v, lr, b1, b2, eps, correction1, correction2, weight_decay))
