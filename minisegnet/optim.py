"""Optimizers: SGD with momentum and weight decay, and Adam.

They update ``param.data`` in place from ``param.grad`` (outside the graph) and
keep their per-parameter state in plain arrays, so ``state_dict()`` can be
saved with a checkpoint and training resumed exactly.
"""
import numpy as np

from . import backend


class Optimizer:
    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be positive, got {lr}")
        self.lr = lr
        self.state = [dict() for _ in self.params]
        self.step_count = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.step_count += 1
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self.update(p, p.grad, state)

    def state_dict(self):
        """Flat name -> NumPy array dict, ready for ``nn.save_npz_atomic``."""
        out = {"step_count": np.asarray(self.step_count), "lr": np.asarray(self.lr)}
        for i, state in enumerate(self.state):
            for key, value in state.items():
                out[f"{i}.{key}"] = backend.to_device(value, "cpu")
        return out

    def load_state_dict(self, state):
        self.step_count = int(state["step_count"])
        self.lr = float(state["lr"])
        self.state = [dict() for _ in self.params]
        for name, value in state.items():
            if name in ("step_count", "lr"):
                continue
            index, key = name.split(".", 1)
            p = self.params[int(index)]
            if tuple(value.shape) != p.shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: state {name} has shape "
                                 f"{tuple(value.shape)}, parameter {index} has {p.shape}")
            self.state[int(index)][key] = backend.to_device(np.asarray(value, dtype=p.dtype), p.device)


class SGD(Optimizer):
    """v <- momentum v + (g + weight_decay w);  w <- w - lr v   (PyTorch's form)."""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay

    def update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            if "velocity" not in state:
                state["velocity"] = g.copy()
            else:
                state["velocity"] *= self.momentum
                state["velocity"] += g
            g = state["velocity"]
        p.data -= self.lr * g


class Adam(Optimizer):
    """Kingma & Ba (2015): running means of g and g^2, bias-corrected, step lr m / (sqrt(v) + eps)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def update(self, p, g, state):
        b1, b2 = self.betas
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        xp = backend.array_module(g)
        if "m" not in state:
            state["m"], state["v"] = xp.zeros_like(g), xp.zeros_like(g)
        state["m"] *= b1
        state["m"] += (1 - b1) * g
        state["v"] *= b2
        state["v"] += (1 - b2) * g * g
        t = self.step_count
        m_hat = state["m"] / (1 - b1 ** t)
        v_hat = state["v"] / (1 - b2 ** t)
        p.data -= (self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)).astype(p.dtype, copy=False)
