"""The autodiff engine: Tensor, Function and the backward pass.

Reverse mode in three pieces:

* a ``Tensor`` holds an array (``.data``, NumPy or CuPy) and, once a backward
  pass reaches it, the gradient of the output with respect to it (``.grad``);
* a ``Function`` is one differentiable op: ``forward(ctx, *arrays)`` computes
  the result on plain arrays and saves on ``ctx`` what the backward needs;
  ``backward(ctx, grad_out)`` returns one gradient per input (the chain rule:
  d loss / d input = d loss / d output * d output / d input);
* ``Tensor.backward`` sorts the graph topologically (iteratively, so a chain of
  10,000 ops does not hit Python's recursion limit) and visits it in reverse,
  handing each node the sum of the gradients flowing into it.

Two guards keep a gradient from being silently wrong (PyTorch refuses the same things):

* a backward pass frees what the forward saved, so a second ``backward()`` through the
  same graph raises instead of adding the gradients twice (``retain_graph=True`` keeps it);
* the engine keeps a register of the arrays that live graphs saved (and the arrays those are
  views of: a reshape shares its input's memory); a Tensor's in-place methods (``add_``,
  ``copy_``, ..., which the optimizers use) count their writes there, and backward refuses
  a graph whose saved memory was written since its forward pass (PyTorch's version counter).
  On the CPU those NumPy arrays (the saved array object and the arrays its ``.base`` chain
  reaches) are also read-only while a graph holds them, so ``x.data[...] = 0`` behind the
  engine's back raises NumPy's "assignment destination is read-only". A NumPy view made
  before the forward pass is not reached that way and writes through it go unseen (PyTorch
  does not see raw writes either): change tensors through their in-place methods.

The ops themselves live in ``minisegnet.functional``, one family per file.
"""
import contextlib

import numpy as np

from . import backend

_state = {"grad_enabled": True, "detect_anomaly": False}


@contextlib.contextmanager
def no_grad():
    """Inside this block ops record no graph (evaluation, optimizer updates)."""
    previous = _state["grad_enabled"]
    _state["grad_enabled"] = False
    try:
        yield
    finally:
        _state["grad_enabled"] = previous


def is_grad_enabled():
    return _state["grad_enabled"]


@contextlib.contextmanager
def detect_anomaly(enabled=True):
    """Inside this block every op checks its result (forward and backward) for NaN/inf."""
    previous = _state["detect_anomaly"]
    _state["detect_anomaly"] = enabled
    try:
        yield
    finally:
        _state["detect_anomaly"] = previous


def _check_finite(op, what, array):
    xp = backend.array_module(array)
    if array is not None and xp.issubdtype(array.dtype, xp.floating) and not bool(xp.isfinite(array).all()):
        bad = int((~xp.isfinite(array)).sum())
        raise FloatingPointError(f"{op}: {what} has {bad} non-finite value(s) of {array.size} (anomaly detection is on)")


class Context:
    """What a Function's forward leaves for its backward."""

    def __init__(self, needs_input_grad):
        # One flag per positional input: does that input need a gradient?
        # Backward functions use it to skip work nobody will read.
        self.needs_input_grad = needs_input_grad
        self.saved = ()
        self.freed = False
        self._watched = []  # (_SavedArray, its write count when this graph saved it)

    def save_for_backward(self, *arrays):
        self.saved = arrays

    def watch_saved(self):
        """Register every saved array, and every array it is a view of, as held by this graph."""
        for a in self.saved:
            for array in _view_chain(a):
                entry = _saved_arrays.get(id(array))
                if entry is None:
                    entry = _saved_arrays[id(array)] = _SavedArray(array)
                entry.graphs += 1
                self._watched.append((entry, entry.writes))

    def check_unchanged(self, op):
        """Refuse to run backward if memory this graph saved was written in place since the forward pass."""
        for entry, writes in self._watched:
            if entry.writes != writes:
                inputs = [f"input {i} (shape {t.shape})" for i, t in enumerate(self.inputs) if isinstance(t, Tensor)
                          and any(a is entry.array for a in _view_chain(t.data))]
                what = inputs[0] if inputs else f"an array (shape {tuple(entry.array.shape)})"
                raise RuntimeError(
                    f"{op}: {what}, saved for backward, was modified in place afterwards ({entry.writes - writes} "
                    "in-place write(s) to its memory), so its gradient would be wrong; compute the forward pass "
                    "again after the change (e.g. after optimizer.step()), or change a copy")

    def free(self):
        """Drop what the forward saved (after backward, or when the graph is garbage-collected)."""
        released = []
        for entry, _ in self._watched:
            entry.graphs -= 1
            if entry.graphs == 0:
                del _saved_arrays[id(entry.array)]
                released.append(entry)
        # Bases before their views: NumPy makes a view writable only once its base is.
        for entry in sorted(released, key=lambda e: len(_view_chain(e.array))):
            entry.thaw()
        self._watched = []
        self.saved = ()
        self.freed = True

    def __del__(self):
        self.free()


class _SavedArray:
    """Bookkeeping for one array that live graphs saved: how many graphs hold it, how many in-place
    writes it has had since (Tensor._write counts them), and whether the engine made it read-only."""

    def __init__(self, array):
        self.array, self.graphs, self.writes = array, 0, 0
        self.waiting_views = []  # released views of this array, made writable when it is
        # NumPy arrays become read-only while saved (CuPy has no such flag); one that was already
        # read-only is left as it was and never made writable by the engine.
        self.frozen = isinstance(array, np.ndarray) and array.flags.writeable
        if self.frozen:
            array.flags.writeable = False

    def thaw(self):
        if self.frozen:
            held_base = next((_saved_arrays[id(a)] for a in _view_chain(self.array)[1:] if id(a) in _saved_arrays),
                             None)
            if held_base is not None:  # NumPy makes a view writable only once its base is: wait for it
                held_base.waiting_views.append(self)
                return
            try:
                self.array.flags.writeable = True
            except ValueError:  # its base was made read-only by someone else meanwhile: leave it so
                pass
        for view in self.waiting_views:
            view.thaw()
        self.waiting_views = []

    def freeze(self):
        if self.frozen:
            self.array.flags.writeable = False


# id(array) -> _SavedArray, for every array that a live graph saved or that a saved array is a view of.
_saved_arrays = {}


def _view_chain(array):
    """The array, the array it is a view of, and so on up to the one that owns the memory."""
    chain = []
    while isinstance(array, np.ndarray) or backend.is_cupy_array(array):
        chain.append(array)
        array = array.base
    return chain


class Function:
    """Base class of every differentiable op; subclasses define forward and backward."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass defines forward")

    @staticmethod
    def backward(ctx, grad_out):
        raise NotImplementedError("a Function subclass defines backward")

    @classmethod
    def op_name(cls):
        return getattr(cls, "name", cls.__name__.lower())

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run forward on the arrays inside the Tensor arguments and record the graph node."""
        tensors = [a for a in args if isinstance(a, Tensor)]
        devices = {t.device for t in tensors}
        if len(devices) > 1:
            raise ValueError(f"{cls.op_name()}: inputs are on different devices ({' and '.join(sorted(devices))}); "
                             "move them with .to(device) first")
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = _state["grad_enabled"] and any(needs)
        ctx = Context(needs)
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *arrays, **kwargs)
        if _state["detect_anomaly"]:
            _check_finite(cls.op_name(), "forward output", out)
        result = Tensor(out)
        if record:
            result.requires_grad = True
            ctx.function = cls
            ctx.inputs = args
            ctx.watch_saved()
            result._ctx = ctx
        return result


class Tensor:
    """An n-dimensional array that can remember how it was computed.

    data:  numpy.ndarray (device "cpu") or cupy.ndarray (device "cuda")
    grad:  array of the same backend, shape and dtype, or None until a backward reaches it

    Change values in place through the methods ``copy_``, ``add_``, ``mul_`` and ``zero_``:
    they count their writes, so a backward pass that saved the old values refuses to run.
    """

    __array_ufunc__ = None  # so that ndarray * Tensor calls Tensor.__rmul__, not NumPy

    def __init__(self, data, requires_grad=False):
        self.data = data
        self.grad = None
        self._ctx = None  # the Context of the Function that produced this tensor
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def requires_grad_(self, flag=True):
        xp = backend.array_module(self.data)
        if flag and not xp.issubdtype(self.data.dtype, xp.floating):
            raise TypeError(f"requires_grad: only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}")
        self.requires_grad = flag
        return self

    # --- what it is -------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape))
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: int(self.data.size))
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self._ctx is None)

    def __len__(self):
        return self.data.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}, device={self.device}{grad})"

    def numpy(self):
        """The values as a NumPy array (copied from the GPU if needed; no graph)."""
        return backend.to_device(self.data, "cpu")

    def item(self):
        return self.data.item()

    def detach(self):
        """The same values, cut from the graph."""
        return Tensor(self.data)

    def to(self, device):
        """This tensor on another device; a leaf stays a leaf (gradients are not copied)."""
        data = backend.to_device(self.data, device)
        if data is self.data:
            return self
        if self._ctx is None:
            return Tensor(data, requires_grad=self.requires_grad)
        from .functional.shape import to_device  # differentiable copy for graph nodes
        return to_device(self, device)

    def zero_grad(self):
        self.grad = None

    # --- in-place changes (counted, so a stale backward is caught) -----------
    def _write(self, op, update, source=None):
        """Apply ``update(array)`` to this tensor's array in place. If a live graph saved this memory
        (this array, or one it is a view of), the write goes through anyway, as in PyTorch, and is
        counted, so that graph's backward refuses to run, naming its op.

        In-place changes are not recorded in the graph, so on a tensor that requires grad they are
        refused unless gradients are off (``with no_grad():``, as optimizers and initialisers run);
        PyTorch refuses the same on a leaf."""
        if self.requires_grad and _state["grad_enabled"]:
            raise RuntimeError(f"{op}: in-place change of a tensor that requires grad (shape {self.shape}); the graph "
                               "does not record it, so do it inside `with msn.no_grad():` (as optimizers do), or "
                               "use an out-of-place op")
        if _state["grad_enabled"] and isinstance(source, Tensor) and source.requires_grad:
            raise RuntimeError(f"{op}: the source requires grad (shape {source.shape}), but an in-place change is "
                               "not recorded in the graph, so its gradient would be lost; do it inside "
                               "`with msn.no_grad():` (then no gradient flows, on purpose), or use an out-of-place op")
        held = [_saved_arrays[id(a)] for a in _view_chain(self.data) if id(a) in _saved_arrays]
        for entry in reversed(held):  # a base must be writable before its view can be
            entry.thaw()
        try:
            update(self.data)
        finally:
            for entry in held:
                entry.freeze()
        for entry in held:  # counted only when the write happened: one that raised changed nothing
            entry.writes += 1
        return self

    def copy_(self, source):
        """self <- source (broadcast, cast to self's dtype), in place."""
        values = source.data if isinstance(source, Tensor) else source
        xp = backend.array_module(self.data)
        values = backend.to_device(values if backend.is_cupy_array(values) else xp.asarray(values), self.device)
        if not xp.can_cast(values.dtype, self.dtype, casting="same_kind"):
            raise TypeError(f"copy_: cannot copy {values.dtype} values into a {self.dtype} tensor")
        return self._write("copy_", lambda a: xp.copyto(a, values, casting="same_kind"), source)

    def add_(self, other, alpha=1):
        """self <- self + alpha * other, in place (the optimizers' update)."""
        values = other.data if isinstance(other, Tensor) else other

        def update(a):
            a += values if alpha == 1 else alpha * values
        return self._write("add_", update, other)

    def mul_(self, factor):
        """self <- self * factor, in place."""
        values = factor.data if isinstance(factor, Tensor) else factor

        def update(a):
            a *= values
        return self._write("mul_", update, factor)

    def zero_(self):
        """self <- 0, in place."""

        def update(a):
            a[...] = 0
        return self._write("zero_", update)

    def __setitem__(self, index, value):
        """self[index] = value, in place (counted like the methods above)."""
        values = value.data if isinstance(value, Tensor) else value

        def update(a):
            a[index] = values
        self._write("setitem", update, value)

    # --- operators: thin wrappers over minisegnet.functional ----------------
    def __add__(self, other): return _F().add(self, other)
    def __radd__(self, other): return _F().add(other, self)
    def __sub__(self, other): return _F().sub(self, other)
    def __rsub__(self, other): return _F().sub(other, self)
    def __mul__(self, other): return _F().mul(self, other)
    def __rmul__(self, other): return _F().mul(other, self)
    def __truediv__(self, other): return _F().div(self, other)
    def __rtruediv__(self, other): return _F().div(other, self)
    def __neg__(self): return _F().neg(self)
    def __pow__(self, exponent): return _F().power(self, exponent)
    def __matmul__(self, other): return _F().matmul(self, other)
    def __getitem__(self, index): return _F().getitem(self, index)
    def exp(self): return _F().exp(self)
    def log(self): return _F().log(self)
    def relu(self): return _F().relu(self)
    def sum(self, axis=None, keepdims=False): return _F().sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _F().mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _F().max(self, axis, keepdims)
    def reshape(self, *shape): return _F().reshape(self, *shape)
    def transpose(self, *axes): return _F().transpose(self, *axes)
    def permute(self, *axes): return _F().transpose(self, *axes)

    # --- the backward pass ------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d self / d leaf into every leaf's .grad that requires it.

        The graph's saved arrays are freed on the way (as in PyTorch), so a second backward
        through it raises; ``retain_graph=True`` keeps them for another pass. (Stricter than
        PyTorch, which lets a second pass through ops that saved nothing go by.)"""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no leaf in its graph requires grad)")
        xp = backend.array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: output has shape {self.shape}; a gradient argument is "
                                   "needed for a non-scalar output")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if grad.shape != self.data.shape:
                raise ValueError(f"backward: gradient shape {tuple(grad.shape)} does not match output shape {self.shape}")

        order = _topological_order(self)
        grads = {id(self): grad}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._ctx is None:  # a leaf: accumulate, as PyTorch does
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            ctx = node._ctx
            op = ctx.function.op_name()
            if ctx.freed:
                raise RuntimeError(f"backward: the graph through {op} (output shape {node.shape}) was already "
                                   "freed by an earlier backward(); call backward(retain_graph=True) the first time "
                                   "to go through a graph twice, or compute the forward pass again")
            ctx.check_unchanged(op)
            input_grads = ctx.function.backward(ctx, g)
            if not retain_graph:
                ctx.free()
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for parent, needs, pg in zip(ctx.inputs, ctx.needs_input_grad, input_grads):
                if not needs or pg is None:
                    continue
                if _state["detect_anomaly"]:
                    _check_finite(op, "backward gradient", pg)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg


def _F():
    from . import functional  # imported late: functional is built on this file
    return functional


def _topological_order(root):
    """Nodes that need a gradient, each after all of its inputs (iterative depth-first search)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.inputs:
                if isinstance(parent, Tensor) and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def saved_bytes(output):
    """(activations, leaves): bytes of memory that the graph behind ``output`` keeps for its backward
    pass. ``leaves`` is what is held anyway (the data of leaf tensors: parameters, inputs, and
    reshapes of them); ``activations`` is the rest, the memory a training step adds on top of the
    model, which is what deeper, wider or less subsampled networks pay for. Each block of memory is
    counted once, however many ops saved it or views of it (a view's bytes are its base's)."""
    if not isinstance(output, Tensor):
        raise TypeError(f"saved_bytes: expected a Tensor, got {type(output).__name__}")
    order = _topological_order(output)
    leaf_memory = {id(_view_chain(node.data)[-1]) for node in order if node._ctx is None}
    owners = {}
    for node in order:
        if node._ctx is None:
            continue
        if node._ctx.freed:
            raise RuntimeError("saved_bytes: this graph was freed by a backward pass; measure before backward "
                               "(or call backward with retain_graph=True)")
        for array in node._ctx.saved:
            chain = _view_chain(array)
            if chain:
                owners[id(chain[-1])] = chain[-1]
    leaves = sum(a.nbytes for key, a in owners.items() if key in leaf_memory)
    return sum(a.nbytes for a in owners.values()) - leaves, leaves


def tensor(data, requires_grad=False, dtype=None, device="cpu"):
    """Make a Tensor from a list, scalar, array or Tensor; the values are always copied.

    Like ``torch.tensor``: changing the source afterwards never changes the tensor (use
    ``from_numpy`` to share a NumPy array's memory instead). Floating-point arrays keep their
    dtype (float64 stays float64); Python floats become float32, Python ints int64, unless
    ``dtype`` says otherwise. The result is a new leaf, cut from any graph.
    """
    if isinstance(data, Tensor):
        data = data.data
    device = backend.check_device(device)
    if backend.is_cupy_array(data) or isinstance(data, (np.ndarray, np.generic)):
        array = data.astype(data.dtype if dtype is None else dtype, copy=True)
    else:
        array = np.array(data, dtype=dtype)
        if dtype is None and array.dtype == np.float64:
            array = array.astype(np.float32)
    array = backend.to_device(array, device)  # a copy already; moving it is a second one only across devices
    return Tensor(array, requires_grad=requires_grad)


def from_numpy(array):
    """A CPU Tensor that shares ``array``'s memory (``torch.from_numpy``): writes to one show in the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)
