"""Adam's update as a plain loop over the parameter's elements: the formula the fast kernel is held to.

Kingma & Ba (2015), with PyTorch's weight decay (added to the gradient) and its bias correction:

    g  <- g + weight_decay * p
    m  <- b1 m + (1 - b1) g                 running mean of the gradient
    v  <- b2 v + (1 - b2) g^2               running mean of its square
    p  <- p - lr * m_hat / (sqrt(v_hat) + eps),   m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)

t is the step number (1 for the first step). p, m and v are updated in place.
"""
import math


def adam_update_reference(p, g, m, v, lr, b1, b2, eps, step, weight_decay):
    p_flat, g_flat, m_flat, v_flat = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
    for i in range(p_flat.size):
        grad = g_flat[i] + weight_decay * p_flat[i]
        m_flat[i] = b1 * m_flat[i] + (1 - b1) * grad
        v_flat[i] = b2 * v_flat[i] + (1 - b2) * grad * grad
        m_hat = m_flat[i] / (1 - b1 ** step)
        v_hat = v_flat[i] / (1 - b2 ** step)
        p_flat[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
