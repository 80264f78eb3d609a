"""Figures for the inspection tools and the CRF, with matplotlib, saved as PNG.

Each function takes what the matching tool returned and a path, draws one figure with titles,
colour bars and class legends, saves it and returns the path. Class colours are the dataset's
(``data.CLASSES``), the same in every lesson. matplotlib is imported here only, so the rest of the
library never needs it.
"""
import matplotlib.pyplot as plt
import numpy as np

from .data import CLASSES, colourise


def _rgb(image):
    """(3, H, W) in [0, 1] -> (H, W, 3) for imshow."""
    return np.clip(np.asarray(image).transpose(1, 2, 0), 0, 1)


def _clean(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def _finish_with_legend(fig, path, title, legend_inches):
    """The class legend along the bottom (``legend_inches`` tall), the title on top, saved at 100 dpi and closed."""
    class_legend(fig)
    fig.suptitle(title, fontsize=10)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, legend_inches / height, 1, 1 - 0.1 / height))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def class_legend(fig, classes=CLASSES, ncol=5, y=0.0):
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=np.array(c.colour) / 255, edgecolor="0.4", lw=0.5)
               for c in classes]
    fig.legend(handles, [f"{c.name} ({c.kind})" for c in classes], loc="lower center", ncol=ncol, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, y))


def plot_top_patches(rows, path, title):
    """rows: [(label, results)] where results is ``inspect.top_activating_patches``'s list; one row of
    patches per unit, each titled with its activation and where it was found."""
    k = max(len(results) for _, results in rows)
    fig, axes = plt.subplots(len(rows), k, figsize=(1.35 * k + 1.2, 1.55 * len(rows) + 0.6), squeeze=False)
    for r, (label, results) in enumerate(rows):
        for c in range(k):
            ax = axes[r, c]
            _clean(ax)
            if c < len(results):
                value, index, (y, x), patch = results[c]
                ax.imshow(_rgb(patch), interpolation="nearest")
                ax.set_title(f"{value:.2f}\nimg {index} @ ({y},{x})", fontsize=7)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_top_activations(rows, images, path, title):
    """rows: [(label, tops, captions)]: one row per unit, ``tops`` a list from ``inspect.top_activations``
    and ``captions`` one short text per crop (or None). Each crop is ``images[t.index]`` inside the unit's
    receptive field, drawn at its place in the whole field; the part of the field outside the image
    (zero padding for the network) is left grey. Size: (1.2 k + 1.7) x (1.45 rows + 0.5) inches at 100 dpi."""
    k = max(len(tops) for _, tops, _ in rows)
    fig, axes = plt.subplots(len(rows), k, figsize=(1.2 * k + 1.7, 1.45 * len(rows) + 0.5), squeeze=False)
    for r, (label, tops, captions) in enumerate(rows):
        for c in range(k):
            ax = axes[r, c]
            _clean(ax)
            if c >= len(tops):
                ax.axis("off")
                continue
            t = tops[c]
            (f_top, f_bottom, f_left, f_right), (top, bottom, left, right) = t.field, t.box
            crop = _rgb(images[t.index][:, top:bottom + 1, left:right + 1])
            ax.set_facecolor("0.6")
            ax.imshow(crop, interpolation="nearest",
                      extent=(left - f_left - 0.5, right - f_left + 0.5, bottom - f_top + 0.5, top - f_top - 0.5))
            ax.set(xlim=(-0.5, f_right - f_left + 0.5), ylim=(f_bottom - f_top + 0.5, -0.5))
            ax.set_title(f"img {t.index}: {t.value:.2f}" + (f"\n{captions[c]}" if captions else ""), fontsize=7)
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.12 / fig.get_size_inches()[1]))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_occlusion(examples, path, title, size=None, heat_title="drop in P(correct class) when occluded here",
                   heat_label="probability drop", shared_scale=True):
    """examples: [(image (3, H, W), label map or None, heat (rows, cols), caption)]; the heat maps are
    the drops from ``inspect.occlusion_sensitivity`` (NaN: not measured there), drawn over the image,
    each at its occluder's centre, on one colour scale for all examples (``shared_scale``) or each on
    its own, symmetric about 0 (then a small drop is visible next to a large one elsewhere)."""
    columns = 3 if any(e[1] is not None for e in examples) else 2
    fig, axes = plt.subplots(len(examples), columns, figsize=(3.0 * columns + 0.8, 2.7 * len(examples)),
                             squeeze=False)
    shared_limit = max(float(np.nanmax(np.abs(e[2]))) for e in examples) or 1.0
    for r, (image, labels, heat, caption) in enumerate(examples):
        limit = shared_limit if shared_scale else (float(np.nanmax(np.abs(heat))) or 1.0)
        h, w = image.shape[1:]
        axes[r, 0].imshow(_rgb(image), interpolation="nearest")
        axes[r, 0].set_title(caption, fontsize=8)
        if columns == 3:
            axes[r, 1].imshow(colourise(labels), interpolation="nearest")
            axes[r, 1].set_title("ground truth", fontsize=8)
        ax = axes[r, columns - 1]
        ax.imshow(_rgb(image).mean(axis=2), cmap="gray", interpolation="nearest")
        # each heat cell is placed at its occluder's centre; extent spans those centres
        rows, cols = heat.shape
        step_y = (h - (size or 0)) / max(rows - 1, 1)
        step_x = (w - (size or 0)) / max(cols - 1, 1)
        offset = (size or 0) / 2 - 0.5
        extent = (offset - step_x / 2, offset + (cols - 0.5) * step_x, offset + (rows - 0.5) * step_y,
                  offset - step_y / 2)
        im = ax.imshow(heat, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.75, extent=extent,
                       interpolation="nearest")
        ax.set(xlim=(-0.5, w - 0.5), ylim=(h - 0.5, -0.5))
        ax.set_title(heat_title, fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.85, label=heat_label)
        for a in axes[r, :columns - 1]:
            _clean(a)
        _clean(ax)
    if columns == 3:
        class_legend(fig, y=0.0)
    fig.suptitle(title, fontsize=10)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, 0.6 / height if columns == 3 else 0, 1, 1 - 0.35 / height))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_segmentations(images, labels, predictions, path, title):
    """images (N, 3, H, W), labels (N, H, W), predictions: [(row title, (N, H, W) labels)]: one column
    per scene, rows image / ground truth / each prediction, the dataset's class colours and legend."""
    count = len(images)
    rows = [("image", [_rgb(im) for im in images]), ("ground truth", [colourise(l) for l in labels])]
    rows += [(name, [colourise(p) for p in pred]) for name, pred in predictions]
    fig, axes = plt.subplots(len(rows), count, figsize=(2.0 * count, 2.05 * len(rows)), squeeze=False)
    for r, (name, pictures) in enumerate(rows):
        for c, picture in enumerate(pictures):
            axes[r, c].imshow(picture, interpolation="nearest")
            _clean(axes[r, c])
        axes[r, 0].set_ylabel(name, fontsize=9)
    class_legend(fig)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_instances(scenes, path, title):
    """scenes: [(image (3, H, W), labels (H, W), instances (H, W), (labels caption, instances caption))]: one
    row per scene, columns image / semantic labels (class colours, legend below) / instances (each id > 0
    its own colour, 0 light grey). Size: 7.2 x (2.75 rows + 0.9) inches at 100 dpi."""
    fig, axes = plt.subplots(len(scenes), 3, figsize=(7.2, 2.75 * len(scenes) + 0.9), squeeze=False)
    for r, (image, labels, instances, (labels_caption, instances_caption)) in enumerate(scenes):
        ids = np.asarray(instances)
        palette = np.vstack([[0.85, 0.85, 0.85], plt.get_cmap("tab10")(np.arange(max(int(ids.max()), 1)) % 10)[:, :3]])
        for ax, picture, caption in ((axes[r, 0], _rgb(image), "image"),
                                     (axes[r, 1], colourise(labels), labels_caption),
                                     (axes[r, 2], palette[ids], instances_caption)):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(caption, fontsize=8)
            _clean(ax)
    return _finish_with_legend(fig, path, title, legend_inches=0.6)


def plot_accuracy_by_distance(scenes, bands, panels, path, title):
    """Lesson 8's figure. scenes: rows of [(picture (H, W, 3), caption)], drawn on top, one row each;
    bands: the distance bands' names; panels: [(panel title, [(net name, accuracy per band)], pixels per band)],
    one panel per group of pixels side by side below the scenes, one line per net, each band's pixel count
    under its name (an empty band has accuracy NaN and no point)."""
    columns = max(len(row) for row in scenes)
    fig = plt.figure(figsize=(2.1 * columns, 2.1 * len(scenes) + 3.4))
    grid = fig.add_gridspec(len(scenes) + 1, 2 * columns, height_ratios=[1] * len(scenes) + [1.55])
    for r, row in enumerate(scenes):
        for c, (picture, caption) in enumerate(row):
            ax = fig.add_subplot(grid[r, 2 * c:2 * c + 2])
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(caption, fontsize=8)
            _clean(ax)
    x = np.arange(len(bands))
    for p, (panel_title, lines, pixels) in enumerate(panels):
        ax = fig.add_subplot(grid[-1, p * columns:(p + 1) * columns])
        for k, (name, accuracy) in enumerate(lines):
            ax.plot(x, accuracy, "o-", color=f"C{k}", label=name)
            for xi, v in zip(x, accuracy):
                if np.isfinite(v):
                    ax.annotate(f"{v:.2f}", (xi, v), textcoords="offset points", xytext=(0, 6 if k % 2 else -12),
                                ha="center", fontsize=7, color=f"C{k}")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{b}\n{n} px" for b, n in zip(bands, pixels)], fontsize=7)
        ax.set(xlabel="distance to the nearest true boundary (pixels)", ylim=(-0.15, 1.12), title=panel_title)
        ax.set_ylabel("pixel accuracy" if p == 0 else "")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    class_legend(fig, ncol=5, y=0.0)
    fig.suptitle(title, fontsize=10)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, 0.5 / height, 1, 1 - 0.1 / height))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_detections(scenes, columns, path, title):
    """Lesson 14's figure. scenes: [(image (3, H, W), [(box (y0, x0, y1, x1), caption)], [label map (H, W)])], one
    row each; columns: the titles of the label maps' columns. Column 0 is the image with every box drawn
    (white, its caption above it); then one column per label map in the class colours, the legend below.
    Size: (2.0 (1 + maps) + 0.2) x (2.05 rows + 0.8) inches at 100 dpi."""
    maps = len(columns)
    fig, axes = plt.subplots(len(scenes), 1 + maps, figsize=(2.0 * (1 + maps) + 0.2, 2.05 * len(scenes) + 0.8),
                             squeeze=False)
    for r, (image, boxes, labels) in enumerate(scenes):
        ax = axes[r, 0]
        ax.imshow(_rgb(image), interpolation="nearest")
        for (y0, x0, y1, x1), caption in boxes:
            ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="white", lw=1.2))
            ax.text(x0 - 0.5, y0 - 1, caption, color="black", fontsize=6, va="bottom",
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.5, alpha=0.8))
        ax.set(xlim=(-0.5, image.shape[2] - 0.5), ylim=(image.shape[1] - 0.5, -0.5))
        for c, picture in enumerate(labels):
            axes[r, 1 + c].imshow(colourise(picture), interpolation="nearest")
        for a in axes[r]:
            _clean(a)
    axes[0, 0].set_title("image and boxes", fontsize=9)
    for c, name in enumerate(columns):
        axes[0, 1 + c].set_title(name, fontsize=9)
    return _finish_with_legend(fig, path, title, legend_inches=0.55)
