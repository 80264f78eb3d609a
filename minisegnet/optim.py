"""Optimizers: SGD with momentum and weight decay, and Adam.

They update each parameter in place from ``param.grad`` (outside the graph) with
``param.add_``, which the engine counts as a write, so a backward pass through a graph built
before the step refuses to run (as in PyTorch). They keep their per-parameter state in
plain arrays, so ``state_dict()`` can be saved with a checkpoint and training resumed
exactly; state dicts going out and coming in are copies, never shared with the optimizer.
"""
import numpy as np

from . import backend, kernels
from .engine import no_grad


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
        with no_grad():  # an update is not part of any graph
            for p, state in zip(self.params, self.state):
                if p.grad is not None:
                    self.update(p, p.grad, state)

    # The state each kind of optimizer keeps per parameter; a state dict with other keys
    # (Adam's m and v loaded into SGD, say) is refused rather than silently dropped.
    state_keys = ()

    def state_dict(self):
        """Flat name -> NumPy array dict (copies), ready for ``nn.save_npz_atomic``:
        ``kind`` (the optimizer's class), ``num_params``, ``step_count``, ``lr`` and
        ``{parameter index}.{key}`` for each piece of state."""
        out = {"kind": np.asarray(type(self).__name__), "num_params": np.asarray(len(self.params)),
               "step_count": np.asarray(self.step_count), "lr": np.asarray(self.lr)}
        for i, state in enumerate(self.state):
            for key, value in state.items():
                out[f"{i}.{key}"] = np.array(backend.to_device(value, "cpu"), copy=True)
        return out

    def load_state_dict(self, state):
        """Load a state dict made by ``state_dict()`` of the same kind of optimizer over parameters
        of the same shapes; the arrays are copied (as in PyTorch). Refuses, naming the entry,
        state of another kind of optimizer or for another number of parameters, state for a
        parameter index this optimizer does not have, a key this kind of optimizer does not keep,
        or a shape that does not match. (``kind`` and ``num_params`` are checked when present:
        state dicts saved before they were added lack them.)"""
        name = f"{type(self).__name__}.load_state_dict"
        for key in ("step_count", "lr"):
            if key not in state:
                raise ValueError(f"{name}: the state dict has no {key!r} entry (entries: {sorted(state)[:6]})")
        if "kind" in state and str(state["kind"]) != type(self).__name__:
            raise ValueError(f"{name}: the state dict is {str(state['kind'])}'s, not {type(self).__name__}'s")
        if "num_params" in state and int(state["num_params"]) != len(self.params):
            raise ValueError(f"{name}: the state dict is for {int(state['num_params'])} parameters, this optimizer "
                             f"has {len(self.params)} (state from another model?)")
        new_state = [dict() for _ in self.params]
        for entry, value in state.items():
            if entry in ("kind", "num_params", "step_count", "lr"):
                continue
            index, _, key = entry.partition(".")
            if not index.isdigit() or int(index) >= len(self.params):
                raise ValueError(f"{name}: entry {entry!r} is for parameter {index}, but this optimizer has "
                                 f"{len(self.params)} parameters (state from another model?)")
            if key not in self.state_keys:
                raise ValueError(f"{name}: entry {entry!r} holds {key!r}, which {type(self).__name__} does not "
                                 f"keep (it keeps {list(self.state_keys)}); state from another kind of optimizer?")
            p = self.params[int(index)]
            if tuple(np.shape(value)) != p.shape:
                raise ValueError(f"{name}: state {entry} has shape {tuple(np.shape(value))}, parameter {index} "
                                 f"has {p.shape}")
            new_state[int(index)][key] = backend.to_device(np.array(value, dtype=p.dtype, copy=True), p.device)
        self.step_count = int(state["step_count"])
        self.lr = float(state["lr"])
        self.state = new_state


class SGD(Optimizer):
    """v <- momentum v + (g + weight_decay w);  w <- w - lr v   (PyTorch's form)."""

    state_keys = ("velocity",)

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
        p.add_(g, alpha=-self.lr)


class Adam(Optimizer):
    """Kingma & Ba (2015): running means of g and g^2, bias-corrected, step lr m / (sqrt(v) + eps)."""

    state_keys = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def update(self, p, g, state):
        xp = backend.array_module(g)
        if "m" not in state:
            state["m"], state["v"] = xp.zeros_like(p.data), xp.zeros_like(p.data)
        g = xp.ascontiguousarray(g, dtype=p.dtype)
        # One pass over the memory (kernels/optim: the formula in reference.py, a Numba loop on the CPU),
        # through p._write so that the engine counts the write, as it counts add_.
        p._write("Adam.step", lambda data: kernels.adam_update(data, g, state["m"], state["v"], self.lr, self.betas,
                                                               self.eps, self.step_count, self.weight_decay))
