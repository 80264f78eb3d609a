"""Pixelwise cross-entropy, the loss of semantic segmentation.

For logits z (N, C, H, W) and integer targets t (N, H, W):

    loss_p = -w[t_p] * log_softmax(z_p)[t_p]           for every pixel p with t_p != ignore_index
    mean   = sum_p loss_p / sum_p w[t_p]                (PyTorch's weighted mean)

Pixels labelled ``ignore_index`` (255: PASCAL VOC's object boundaries) contribute
nothing, not even to the denominator. The gradient with respect to z_p is
w[t_p] (softmax(z_p) - onehot(t_p)) / denominator.
"""
from ..backend import array_module
from ..engine import Function, Tensor
from ._geometry import as_int, check_float
from .activation import log_softmax_array


class CrossEntropy(Function):
    name = "cross_entropy"

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, reduction):
        xp = array_module(logits)
        num_classes = logits.shape[1]
        valid = target != ignore_index
        safe_target = xp.where(valid, target, 0)  # any class index; masked out below
        # Move the class axis last: (N, H, W, C), one row of scores per pixel.
        log_probs = log_softmax_array(xp.moveaxis(logits, 1, -1), axis=-1)
        picked = xp.take_along_axis(log_probs, safe_target[..., None], axis=-1)[..., 0]
        pixel_weight = valid.astype(logits.dtype)
        if weight is not None:
            pixel_weight = pixel_weight * weight[safe_target]
        losses = -picked * pixel_weight
        if reduction == "mean":
            denominator = pixel_weight.sum()
            out = losses.sum() / denominator  # 0/0 = nan when every pixel is ignored, as in PyTorch
        elif reduction == "sum":
            denominator = None
            out = losses.sum()
        else:
            denominator = None
            out = losses
        ctx.save_for_backward(log_probs, safe_target, pixel_weight, denominator)
        ctx.reduction, ctx.num_classes = reduction, num_classes
        return xp.asarray(out, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, g):
        log_probs, target, pixel_weight, denominator = ctx.saved
        xp = array_module(log_probs)
        onehot = xp.arange(log_probs.shape[-1]) == target[..., None]
        grad = xp.exp(log_probs) - onehot  # softmax - onehot
        # g is a scalar for "mean"/"sum" and one value per pixel for "none"; both broadcast.
        scale = (pixel_weight / denominator if ctx.reduction == "mean" else pixel_weight) * g
        grad *= scale[..., None]
        return xp.moveaxis(grad, -1, 1), None, None, None, None


def cross_entropy(logits, target, weight=None, ignore_index=255, reduction="mean"):
    """Softmax cross-entropy between class scores and integer labels.

    logits: (N, C) or (N, C, H, W) float32 or float64 tensor (integer logits are refused: they would
    give an integer loss);  target: (N,) or (N, H, W) integers
    in [0, C) or equal to ``ignore_index``;  weight: optional (C,) class weights
    (pixel classes are heavily unbalanced);  reduction: "mean" | "sum" | "none".
    """
    t = target.data if isinstance(target, Tensor) else target
    xp = array_module(logits.data)
    # The labels are checked where they are: labels from the host (a data loader's NumPy array) are checked
    # by NumPy before they move to a GPU, so a training step needs no GPU-to-host round trip for the check.
    check_xp = array_module(t)  # numpy for NumPy arrays and lists, cupy for CuPy arrays
    t = check_xp.asarray(t)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if logits.ndim < 2:
        raise ValueError(f"cross_entropy: logits need shape (N, C, ...), got {logits.shape}")
    check_float(logits, "cross_entropy", "logits")
    ignore_index = as_int(ignore_index, "cross_entropy", "ignore_index")
    if logits.shape[1] < 1:
        raise ValueError(f"cross_entropy: logits have shape {tuple(logits.shape)}: no classes (C = 0)")
    expected = (logits.shape[0],) + logits.shape[2:]
    if tuple(t.shape) != expected:
        raise ValueError(f"cross_entropy: target shape {tuple(t.shape)} does not match logits {logits.shape}; "
                         f"expected {expected}")
    if not check_xp.issubdtype(t.dtype, check_xp.integer):
        raise TypeError(f"cross_entropy: target must hold integer class labels, got dtype {t.dtype}")
    num_classes = logits.shape[1]
    bad = (t != ignore_index) & ((t < 0) | (t >= num_classes))
    if bool(bad.any()):  # (labels already on a GPU: this waits for the GPU, once per call)
        values = sorted(set(int(v) for v in check_xp.unique(t[bad]).tolist()))
        raise ValueError(f"cross_entropy: target labels {values[:10]} are outside [0, {num_classes}) "
                         f"and are not ignore_index={ignore_index}")
    t = xp.asarray(t)
    w = None
    if weight is not None:
        w = xp.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=logits.dtype)
        if w.shape != (num_classes,):
            raise ValueError(f"cross_entropy: weight has shape {tuple(w.shape)}, expected ({num_classes},)")
    return CrossEntropy.apply(logits, t.astype(xp.int64, copy=False), w, ignore_index, reduction)
