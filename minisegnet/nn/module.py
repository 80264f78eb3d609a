"""Module, Parameter, Sequential, and state dicts saved to .npz atomically."""
import os
import re
import tempfile
from collections import OrderedDict

import numpy as np

try:
    import fcntl  # POSIX file locks: tell a live writer's temporary from a dead one's
except ImportError:  # Windows
    fcntl = None

from .. import backend
from ..engine import Tensor, no_grad


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates (requires_grad by default)."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class of layers and models: assigning a Parameter or a Module as an
    attribute registers it, so parameters() finds everything (PyTorch's convention)."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    # --- walking the tree ---------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self):
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def to(self, device):
        """Move every parameter to 'cpu' or 'cuda' in place; returns self."""
        device = backend.check_device(device)
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            p.grad = None if p.grad is None else backend.to_device(p.grad, device)
        return self

    # --- state dicts ----------------------------------------------------------
    def state_dict(self):
        """Parameter name -> NumPy array (a copy, always on the CPU)."""
        return OrderedDict((name, np.array(p.numpy(), copy=True)) for name, p in self.named_parameters())

    def load_state_dict(self, state):
        """Copy arrays into the parameters; refuse missing, unexpected or mis-shaped entries.

        The values are copied (as in PyTorch), so training afterwards never changes ``state``
        and two models loaded from one dict do not share weights. Each parameter keeps its
        array, dtype and device (``Parameter.copy_``); the write is counted, so a graph that
        saved the old weights refuses its backward."""
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        wrong = [f"{k}: expected {own[k].shape}, got {tuple(np.shape(state[k]))}"
                 for k in own if k in state and tuple(np.shape(state[k])) != own[k].shape]
        if missing or unexpected or wrong:
            problems = []
            if missing:
                problems.append(f"missing entries {missing}")
            if unexpected:
                problems.append(f"unexpected entries {unexpected}")
            if wrong:
                problems.append("mis-shaped entries [" + "; ".join(wrong) + "]")
            raise ValueError(f"load_state_dict ({type(self).__name__}): " + ", ".join(problems))
        with no_grad():
            for name, p in own.items():
                p.copy_(np.asarray(state[name]).astype(p.dtype, copy=False))
        return self

    def __repr__(self):
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}({extra}\n" + "\n".join(lines) + "\n)"

    def extra_repr(self):
        return ""


class Sequential(Module):
    """Layers applied one after another; indexable and iterable (``net[0]``, ``for layer in net``)."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, i):
        layers = list(self._modules.values())
        return Sequential(*layers[i]) if isinstance(i, slice) else layers[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


def _remove_stale_temporaries(folder, name):
    """Delete the temporaries that earlier writes of ``name`` left in ``folder`` when their process
    was killed (SIGKILL, power cut) between creating the file and renaming it.

    Only our own files are touched: ``.tmp-<name>-<random>.npz`` (and the ``.tmp-<random>.npz`` of
    versions before the target was in the name). A temporary that a live process is still writing
    is kept: every writer holds an exclusive lock on its temporary until the rename, and the
    operating system drops a lock when its process dies, SIGKILL included; so a temporary whose
    lock we can take belongs to a dead writer. (Without ``fcntl``, on Windows, a file open in
    another process cannot be deleted, which protects a live writer the same way.)
    """
    ours = re.compile(re.escape(f".tmp-{name}-") + r"[a-z0-9_]+\.npz|\.tmp-[a-z0-9_]{8}\.npz")
    for entry in os.listdir(folder):
        if not ours.fullmatch(entry):
            continue
        stale = os.path.join(folder, entry)
        try:
            if fcntl is None:
                os.remove(stale)  # Windows refuses while a writer has it open
                continue
            with open(stale, "rb") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a live writer holds it
                os.remove(stale)
        except OSError:  # being written now, or already gone: leave it
            pass


def save_npz_atomic(path, arrays):
    """Write ``arrays`` (name -> array) to ``path`` as .npz without ever leaving a half-written file:
    write a temporary file in the same folder, flush it to disk, then rename it over ``path``
    (a rename within one file system is atomic).

    A process killed mid-write cannot remove its temporary, so each write first deletes the
    temporaries of ``path`` that dead writers left behind (see ``_remove_stale_temporaries``).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    os.makedirs(folder, exist_ok=True)
    _remove_stale_temporaries(folder, name)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{name}-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            if fcntl is not None:
                # "Being written": released on close or death. (A cleaner that took the file in the
                # instant before this lock would make the rename below fail loudly, never silently.)
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:
                os.replace(tmp, path)  # still locked: no cleaner can take the finished file from us
        if fcntl is None:
            os.replace(tmp, path)  # Windows renames closed files only
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_state_dict(module_or_state, path):
    """Save a Module's state dict (or a state dict) to ``path`` (.npz), atomically."""
    state = module_or_state.state_dict() if isinstance(module_or_state, Module) else module_or_state
    save_npz_atomic(path, state)


def read_npz(path, op):
    """Every array of the .npz at ``path``, by name. A missing file raises FileNotFoundError and an
    unreadable one (truncated, corrupt, not an .npz) OSError, both naming ``op`` and the file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{op}: no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return OrderedDict((k, data[k]) for k in data.files)
    except Exception as e:  # zipfile, zlib and numpy each raise their own kinds
        raise OSError(f"{op}: cannot read {path} (truncated or corrupt?): {type(e).__name__}: {e}") from e


def load_state_dict(path):
    """Read a state dict saved by ``save_state_dict`` (errors as ``read_npz``)."""
    return read_npz(path, "load_state_dict")
