"""Training: a ``fit`` loop with validation metrics, checkpoints that survive interruption, and resume.

Every epoch: one pass over shuffled, augmented batches (tqdm shows loss and images/s), then the FCN
paper's metrics on the validation set, then a checkpoint written atomically to
``out_dir/checkpoint.npz`` (model, optimizer state, epoch, random-generator states, model config)
and a history record (``history.json``, valid JSON: an undefined metric is null, not NaN) with loss
and metric curves (``curves.png``). An interrupted run started again with ``resume=True`` continues
from its last checkpoint and loses at most the epoch in progress; it then produces exactly the
weights an uninterrupted run would have. An out_dir that holds a run is never replaced silently:
without ``resume`` it takes ``overwrite=True``.
Images may differ in size (PASCAL VOC): training crops them to one size (padding smaller ones),
evaluation batches only images of one size together.
"""
import json
import math
import os
import time

import numpy as np

from . import functional as F
from . import optim
from .data import DataLoader, normalise
from .engine import no_grad, tensor
from .metrics import SegmentationMetrics, boundary_mask
from .nn.module import read_npz, save_npz_atomic
from .random import get_state as get_global_rng_state, set_state as set_global_rng_state

CHECKPOINT = "checkpoint.npz"
HISTORY = "history.json"
CURVES = "curves.png"


def poly_lr(base_lr, iteration, max_iterations, power=0.9, warmup=0):
    """DeepLab's "poly" schedule: lr = base_lr * (1 - iteration / max_iterations) ** power, with an optional
    linear warm-up (Goyal et al. 2017): over the first ``warmup`` iterations the rate is also multiplied by
    (iteration + 1) / warmup, so the first steps, taken while the freshly initialised net's gradients are
    largest and least informative, are small ones."""
    rate = base_lr * (1 - min(iteration, max_iterations) / max_iterations) ** power
    return rate * min(1.0, (iteration + 1) / warmup) if warmup else rate


def median_frequency_weights(dataset, num_classes, ignore_index=255):
    """Class weights freq_median / freq_c (Eigen & Fergus): rare classes count more in the loss.
    Pixels are counted one image at a time (VOC images differ in size and need not fit in memory)."""
    counts = np.zeros(num_classes, dtype=np.float64)
    for i in range(len(dataset)):
        labels = np.asarray(dataset[i][1]).ravel()
        found = np.bincount(labels[labels != ignore_index], minlength=num_classes)
        if found.size > num_classes:
            raise ValueError(f"median_frequency_weights: item {i} has label values "
                             f"{(np.flatnonzero(found[num_classes:]) + num_classes).tolist()} outside "
                             f"[0, {num_classes}) that are not ignore_index={ignore_index}")
        counts += found
    freq = counts / counts.sum()
    present = freq > 0
    weights = np.zeros(num_classes)
    weights[present] = np.median(freq[present]) / freq[present]
    return weights.astype(np.float32)


def predict(model, images, batch_size=16, device="cpu"):
    """Class scores (N, C, H, W) as a NumPy array, in evaluation mode, without building a graph."""
    model.eval()
    outputs = []
    with no_grad():
        for start in range(0, len(images), batch_size):
            outputs.append(model(tensor(images[start:start + batch_size], device=device)).numpy())
    model.train()
    return np.concatenate(outputs)


def same_size_batches(dataset, batch_size=16, mean=None, std=None):
    """(images (B, 3, H, W) float32, labels (B, H, W) int64) of consecutive items, in order, B <= batch_size.

    Images of any size: a new batch starts whenever the size changes, so images of different sizes
    (PASCAL VOC) are never padded to share one; padding would change the predictions near the
    padded edges. Images are normalised with ``mean``/``std`` when given.
    """
    batch = []
    for i in range(len(dataset)):
        image, labels = dataset[i]
        if batch and (len(batch) == batch_size or labels.shape != batch[0][1].shape):
            yield _stack(batch, mean, std)
            batch = []
        batch.append((image, labels))
    if batch:
        yield _stack(batch, mean, std)


def _stack(pairs, mean, std):
    images = np.stack([p[0] for p in pairs]).astype(np.float32)
    if mean is not None:
        images = normalise(images, mean, std)
    return images, np.stack([p[1] for p in pairs]).astype(np.int64)


def evaluate(model, dataset, batch_size=16, device="cpu", mean=None, std=None, boundary_width=2):
    """The FCN paper's metrics on a dataset, plus boundary-band (trimap) accuracy and the confusion matrix
    they came from (``"confusion"``: rows truth, columns prediction). Images may differ in size (see
    ``same_size_batches``)."""
    if len(dataset) == 0:
        raise ValueError("evaluate: the dataset is empty")
    ignore_index = getattr(dataset, "ignore_index", 255)
    metrics = SegmentationMetrics(model.num_classes, ignore_index)
    correct_band = total_band = 0
    for images, labels in same_size_batches(dataset, batch_size, mean, std):
        pred = predict(model, images, batch_size, device).argmax(axis=1)
        metrics.update(pred, labels)
        band = boundary_mask(labels, boundary_width, ignore_index)  # pooled over batches, not averaged per batch
        correct_band += int((pred[band] == labels[band]).sum())
        total_band += int(band.sum())
    scores = metrics.compute()
    scores["confusion"] = metrics.confusion.copy()  # rows truth, columns prediction (metrics.confusion_among)
    scores["boundary_accuracy"] = correct_band / total_band if total_band else float("nan")
    return scores


def _state_to_arrays(model, optimizer, epoch, iteration, loader, extra):
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    meta = {"epoch": epoch, "iteration": iteration, "config": model.config(),
            "loader_rng": loader.rng.bit_generator.state, "global_rng": get_global_rng_state(), **extra}
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def load_checkpoint(path):
    """(model state, optimizer state, meta dict) from a checkpoint written by ``fit``.

    A missing file raises FileNotFoundError; an unreadable one (truncated, corrupt, not an .npz)
    OSError; an .npz that ``fit`` did not write (no "meta" entry) ValueError; each names the file.
    """
    path = os.fspath(path)
    arrays = read_npz(path, "load_checkpoint")
    if "meta" not in arrays:
        names = sorted(arrays)
        raise ValueError(f"load_checkpoint: {path} is not a checkpoint written by fit (it has no 'meta' entry; "
                         f"it holds {len(names)} arrays: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    optim_state = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
    return model_state, optim_state, json.loads(str(arrays["meta"]))


def _check_config(model, meta, path):
    saved, ours = meta["config"], model.config()
    if saved["name"] != ours["name"]:
        raise ValueError(f"resume: {path} holds a {saved['name']!r} model, but this run trains {ours['name']!r}")
    if saved["num_classes"] != ours["num_classes"]:
        raise ValueError(f"resume: {path} was trained for {saved['num_classes']} classes, this model has "
                         f"{ours['num_classes']}")


def fit(model, train_set, val_set=None, epochs=10, batch_size=16, lr=0.01, optimizer="adam", momentum=0.9,
        weight_decay=0.0, class_weights=None, poly_power=0.9, seed=0, out_dir=None, resume=False,
        overwrite=False, augment=True, crop=None, mean=None, std=None, device="cpu", progress=True,
        stop_after_epoch=None, boundary_width=2, warmup=0):
    """Train ``model`` and return its history (one dict per epoch).

    optimizer: "adam" or "sgd" (with ``momentum``); the learning rate follows the poly schedule, after a
        linear warm-up over the first ``warmup`` iterations (``poly_lr``; 0: none).
    class_weights: None, "median" (median-frequency balancing) or an array of C weights.
    out_dir: where checkpoint.npz, history.json and curves.png go (None: nothing is written).
    resume: continue from out_dir/checkpoint.npz if it exists.
    overwrite: start afresh in an out_dir that holds an earlier run, deleting its checkpoint, history
        and curves first; without it (and without resume) such an out_dir is refused, so no run is
        lost by mistake.
    crop: random crops of (h, w) (or one int) pixels; smaller images are padded (see ``DataLoader``).
    stop_after_epoch: end the run early after this epoch (as if interrupted; for tests and lessons).
    A batch in which every pixel is ignore_index raises ValueError: its mean loss would be 0/0
    (NaN, as in PyTorch), which says nothing about the learning rate.
    """
    if len(train_set) == 0:
        raise ValueError("fit: the training set is empty")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive integer, got {epochs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"fit: warmup must be a number of iterations >= 0, got {warmup!r}")
    if resume and overwrite:
        raise ValueError("fit: resume=True continues the run in out_dir and overwrite=True replaces it; "
                         "pass one of them")
    checkpoint = os.path.join(out_dir, CHECKPOINT) if out_dir else None
    if checkpoint and os.path.exists(checkpoint) and not resume and not overwrite:
        raise FileExistsError(f"fit: {checkpoint} holds an earlier run; pass resume=True to continue it "
                              "or overwrite=True to replace it")
    model.to(device)
    loader = DataLoader(train_set, batch_size, shuffle=True, seed=seed, augment=augment, crop=crop,
                        mean=mean, std=std)
    if optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"fit: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    ignore_index = getattr(train_set, "ignore_index", 255)
    if isinstance(class_weights, str):
        if class_weights != "median":
            raise ValueError(f"fit: class_weights must be None, 'median' or an array, got {class_weights!r}")
        class_weights = median_frequency_weights(train_set, model.num_classes, ignore_index)
    max_iterations = epochs * len(loader)

    history, start_epoch, iteration = [], 0, 0
    if resume and checkpoint and os.path.exists(checkpoint):
        model_state, optim_state, meta = load_checkpoint(checkpoint)
        _check_config(model, meta, checkpoint)
        try:
            model.load_state_dict(model_state)
        except ValueError as error:  # same name and classes, other layers: saved by another version of the model
            raise ValueError(f"resume: {checkpoint} holds a {meta['config']['name']!r} model whose layers differ "
                             f"from this one's ({error}); it was saved by another version or configuration of the model "
                             "(widths, depths, scales): move that folder away, or train into another out_dir") from error
        opt.load_state_dict(optim_state)
        loader.rng.bit_generator.state = meta["loader_rng"]
        set_global_rng_state(meta["global_rng"])
        start_epoch, iteration = meta["epoch"], meta["iteration"]
        history = meta.get("history", [])
    elif overwrite and out_dir:  # all arguments checked: now the old run goes, before it can mix with the new
        for name in (CHECKPOINT, HISTORY, CURVES):
            if os.path.exists(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))

    for epoch in range(start_epoch, epochs):
        started, losses, seen = time.perf_counter(), [], 0
        batches = loader
        if progress:
            from tqdm import tqdm
            batches = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=None)  # off when not a terminal
        for batch, (images, labels) in enumerate(batches):
            if not (labels != ignore_index).any():
                raise ValueError(f"fit: batch {batch + 1} of epoch {epoch + 1} (iteration {iteration}) has no "
                                 f"labelled pixel: every label is ignore_index={ignore_index}, so its loss is 0/0; "
                                 "check the labels, or crop larger or with fewer ignored pixels")
            opt.lr = poly_lr(lr, iteration, max_iterations, poly_power, warmup)
            opt.zero_grad()
            scores = model(tensor(images, device=device))
            loss = F.cross_entropy(scores, labels, weight=class_weights, ignore_index=ignore_index)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"fit: the loss became {value} at epoch {epoch + 1}, iteration "
                                         f"{iteration}; lower the learning rate (now {opt.lr:.3g})")
            loss.backward()
            opt.step()
            losses.append(value)
            seen += len(images)
            iteration += 1
            if progress:
                batches.set_postfix(loss=f"{value:.3f}", img_per_s=f"{seen / (time.perf_counter() - started):.0f}")
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "lr": opt.lr,
                  "seconds": time.perf_counter() - started}
        if val_set is not None:
            scores = evaluate(model, val_set, batch_size, device, mean, std, boundary_width)
            record.update({k: float(v) for k, v in scores.items() if np.ndim(v) == 0})
            record["per_class_iou"] = [float(v) for v in scores["per_class_iou"]]
        history.append(record)
        if out_dir:
            save_npz_atomic(checkpoint, _state_to_arrays(model, opt, epoch + 1, iteration, loader,
                                                         {"history": history}))
            _write_history(out_dir, history)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    return history


def json_ready(value):
    """``value`` with NumPy arrays and scalars made lists and numbers, and NaN and infinities made None.

    JSON has no NaN (``json.dump`` writes a bare ``NaN`` that other readers reject); a metric that
    is undefined (a class absent from the validation set) is written as null instead.
    """
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def write_json(path, value):
    """Write ``json_ready(value)`` to ``path`` atomically (a temporary file renamed over it): valid JSON."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(json_ready(value), f, indent=1, allow_nan=False)
    os.replace(tmp, path)


def _write_history(out_dir, history):
    write_json(os.path.join(out_dir, HISTORY), history)
    plot_history(history, os.path.join(out_dir, CURVES))


def plot_history(history, path):
    """Loss and validation metrics per epoch, saved as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o")
    left.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    for key, label in (("pixel_accuracy", "pixel acc."), ("mean_accuracy", "mean acc."), ("mean_iou", "mean IU"),
                       ("boundary_accuracy", "boundary acc.")):
        if key in history[0]:
            right.plot(epochs, [h[key] for h in history], marker="o", label=label)
    right.set(title="validation", xlabel="epoch", ylim=(0, 1))
    if right.lines:
        right.legend(loc="lower right")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
