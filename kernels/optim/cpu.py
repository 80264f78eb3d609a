"""Adam's update as one Numba loop: ``reference.py``'s formula in a single pass over the memory.

Written with NumPy array operations, one Adam step makes about fifteen passes over each
parameter-sized array (each operation reads its inputs and writes a temporary); this loop reads
p, g, m and v once and writes p, m and v once. The scalars arrive already in the parameter's
dtype (the caller converts them), so a float32 parameter is updated in float32 arithmetic, as
PyTorch does, and the bias corrections 1 / (1 - b^t) are computed once per step, not per element.
One thread: the lesson networks' parameters are a few hundred thousand numbers, a fraction of a
millisecond in one pass, less than waking a thread pool would cost for each of them.
"""
import math

from numba import njit


@njit(cache=True)
def adam_update_cpu(p, g, m, v, lr, b1, b2, eps, correction1, correction2, weight_decay):
    """p, g, m, v: contiguous arrays of one shape and dtype; correction1 = 1 / (1 - b1^t), correction2 = 1 / (1 - b2^t)."""
    p_flat, g_flat, m_flat, v_flat = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
    one = p_flat.dtype.type(1)
    for i in range(p_flat.size):
        grad = g_flat[i] + weight_decay * p_flat[i]
        m_i = b1 * m_flat[i] + (one - b1) * grad
        v_i = b2 * v_flat[i] + (one - b2) * grad * grad
        m_flat[i] = m_i
        v_flat[i] = v_i
        p_flat[i] -= lr * (m_i * correction1) / (math.sqrt(v_i * correction2) + eps)
