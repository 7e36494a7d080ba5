"""What a trained network learned, as ZFNet's authors looked at it: the first layer's filters as
an image grid, and the feature maps one image produces at one layer."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.viz.plots import pyplot, save_figure


def find_conv(model: nn.Module, layer: str | None) -> tuple[str, nn.Conv2d]:
    """The convolution called `layer` (a full name or a unique last part), or the first one."""
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise CnnlabError("this model has no 2-D convolution")
    if layer is None:
        return convs[0]
    matches = [(name, m) for name, m in convs if name == layer or name.split(".")[-1] == layer or name.endswith("." + layer)]
    if len(matches) != 1:
        shown = ", ".join(name for name, _ in convs[:12]) + (" ..." if len(convs) > 12 else "")
        raise CnnlabError(f"no single convolution called {layer!r}" + (f" (it matches {len(matches)})" if matches else "")
                          + f"; the convolutions are: {shown}")
    return matches[0]


def scaled_each(stack: torch.Tensor) -> torch.Tensor:
    """Every entry of the first dimension scaled to [0, 1] on its own."""
    flat = stack.flatten(1)
    shape = (-1,) + (1,) * (stack.dim() - 1)
    low, high = flat.min(1).values.view(shape), flat.max(1).values.view(shape)
    return (stack - low) / (high - low).clamp(min=1e-12)


def image_grid(images: list, cell: float, cmap: str | None, title: str):
    """A near-square grid of images (H x W, or H x W x 3 in colour), axes hidden, under `title`."""
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    plt = pyplot()
    figure, axes = plt.subplots(rows, columns, figsize=(columns * cell + 0.5, rows * cell + 0.7), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index], cmap=None if images[index].ndim == 3 else cmap, interpolation="nearest")
    figure.suptitle(title, fontsize=9)
    return figure


def filter_grid(model: nn.Module, path: str | Path, layer: str | None = None, title: str = "") -> tuple[Path, str]:
    """Each output channel's kernel, scaled to [0, 1] on its own: in colour when the layer reads 3
    channels, grey for 1, the mean over input channels otherwise (said in the title)."""
    name, conv = find_conv(model, layer)
    weight = conv.weight.detach().float().cpu()  # (out, in/groups, k, k)
    if weight.shape[1] not in (1, 3):
        weight, how = weight.mean(1, keepdim=True), f", mean over its {weight.shape[1]} input channels"
    else:
        how = ""
    weight = scaled_each(weight)
    images = [w[0].numpy() if w.shape[0] == 1 else w.permute(1, 2, 0).numpy() for w in weight]
    k = "x".join(map(str, conv.kernel_size))
    figure = image_grid(images, 0.6, "gray", f"{title}{name}: {weight.shape[0]} filters {k}{how}")
    return save_figure(figure, path), name


@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor, layer: str, path: str | Path, limit: int = 64,
                 title: str = "") -> tuple[Path, tuple[int, ...]]:
    """The output of module `layer` for the one image `x` (1, C, H, W): up to `limit` channels,
    each scaled on its own, in a grid."""
    modules = dict(model.named_modules())
    if layer not in modules:
        candidates = [name for name in modules if name and (name.endswith("." + layer) or name.split(".")[-1] == layer)]
        if len(candidates) != 1:
            shown = ", ".join(name for name, _ in model.named_children())
            raise CnnlabError(f"no single layer called {layer!r}; name a module such as {shown} "
                              "(`cnnlab show MODEL --depth 2` lists them all)")
        layer = candidates[0]
    captured: list[torch.Tensor] = []
    handle = modules[layer].register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        model.eval()(x)
    finally:
        handle.remove()
    output = captured[0][0] if isinstance(captured[0], torch.Tensor) else None
    if output is None or output.dim() != 3:
        raise CnnlabError(f"{layer} does not output feature maps (C, H, W); choose a convolution, pooling or block")
    maps = scaled_each(output[:limit].float().cpu())
    shown = f"first {maps.shape[0]} of {output.shape[0]}" if output.shape[0] > maps.shape[0] else f"{output.shape[0]}"
    figure = image_grid([m.numpy() for m in maps], 0.9, "viridis",
                        f"{title}{layer}: {shown} maps of {output.shape[1]}x{output.shape[2]}")
    return save_figure(figure, path), tuple(output.shape)


def filtered_picture(image: torch.Tensor, label: str, kernel_text: str, out: str | Path) -> tuple[Path, torch.Tensor, torch.Tensor]:
    """An image beside its cross-correlation with a kernel (a named one such as "sobel-x", or rows of
    numbers), as a PNG; returns (path, kernel, filtered image)."""
    from cnnlab.analysis import operators

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise CnnlabError(f"--out {out}: the picture is written as PNG; give a .png name")
    kernel = operators.kernel_from_text(kernel_text)
    filtered = operators.filter_image(image, kernel)
    plt = pyplot()
    figure, (before, after) = plt.subplots(1, 2, figsize=(7, 3.6))
    kernel_name = kernel_text if kernel_text in operators.NAMED_KERNELS else "kernel"
    for axis, picture, title in ((before, image, label), (after, filtered, kernel_name)):
        data = picture.permute(1, 2, 0).numpy() if picture.shape[0] == 3 else picture[0].numpy()
        if picture.shape[0] == 3:
            data = data.clip(0, 1)
        axis.imshow(data, cmap=None if picture.shape[0] == 3 else "gray")
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.suptitle("kernel: " + "; ".join(" ".join(operators.number(v) for v in row) for row in kernel.tolist()), fontsize=8)
    save_figure(figure, out, dpi=110)
    return out, kernel, filtered
