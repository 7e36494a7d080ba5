"""A run's accuracy, per class and image by image: the report's bars and its grid of mistakes."""

from __future__ import annotations

from pathlib import Path

from cnnlab.viz.plots import pyplot, save_figure


def class_accuracy_bars(per_class: list[float], class_names: list[str], path: str | Path) -> Path:
    """One horizontal bar per class: its top-1 accuracy, the weakest classes marked."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 0.3 * len(class_names) + 1))
    values = [100 * v for v in per_class]
    mean = sum(values) / max(len(values), 1)
    colours = ["#c0504d" if v < mean - 5 else "#4f81bd" for v in values]
    axis.barh(range(len(values)), values, color=colours)
    axis.set_yticks(range(len(values)), [str(name) for name in class_names], fontsize=8)
    axis.invert_yaxis()
    axis.axvline(mean, color="#555555", linestyle="--", linewidth=0.8)
    axis.set_xlim(0, 100)
    axis.set_xlabel("top-1 accuracy (%); dashed: the mean over classes; red: 5 points or more below it")
    for i, v in enumerate(values):
        axis.text(min(v + 1, 92), i, f"{v:.1f}", va="center", fontsize=7)
    return save_figure(figure, path)


def mistakes_grid(images, predictions: list[int], class_names: list[str], path: str | Path,
                  limit: int = 24) -> tuple[Path, int]:
    """The first `limit` misclassified images, each titled "true -> predicted"."""
    labels = images.labels.tolist()
    wrong = [i for i, (label, guess) in enumerate(zip(labels, predictions)) if label != guess][:limit]
    plt = pyplot()
    columns = 8
    rows = max(1, -(-len(wrong) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.45), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, index in zip(axes.flat, wrong):
        image = images.images[index]
        if image.shape[0] == 1:
            axis.imshow(image[0].numpy(), cmap="gray")
        else:
            axis.imshow(image.permute(1, 2, 0).numpy())
        axis.set_title(f"{class_names[labels[index]]}\n-> {class_names[predictions[index]]}", fontsize=6)
    if not wrong:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    return save_figure(figure, path), len(wrong)


def write_confusion(folder: Path, matrix: list[list[int]], class_names) -> None:
    """FOLDER/confusion.csv (true class per row, predicted per column) and confusion.png."""
    import csv
    import io

    from cnnlab.checkpoint import atomic_write_text

    plt = pyplot()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["true \\ predicted", *class_names])
    for name, row in zip(class_names, matrix):
        writer.writerow([name, *row])
    atomic_write_text(folder / "confusion.csv", buffer.getvalue())
    n = len(class_names)
    figure, axis = plt.subplots(figsize=(1.0 + 0.45 * n, 0.8 + 0.45 * n))
    axis.imshow(matrix, cmap="Blues")
    ticks = range(n)
    axis.set_xticks(ticks, class_names, rotation=90, fontsize=7)
    axis.set_yticks(ticks, class_names, fontsize=7)
    axis.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                axis.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=6)
    figure.tight_layout()
    save_figure(figure, folder / "confusion.png", dpi=100, tight=False)
