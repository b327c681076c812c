"""Evaluation on a labelled split: AUROC and threshold metrics, with optional plots."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .data import NORMAL_CLASS, split_folder
from .inference import Inspector
from .io import read_image
from .metrics import best_f1_threshold, confusion_metrics, roc_auc, roc_points

logger = logging.getLogger(__name__)


def score_files(inspector: Inspector, paths: list[Path], batch_size: int = 16, description: str = "score") -> np.ndarray:
    """Score image files with the same reading path as ``aeflow predict``."""
    scores = []
    for start in tqdm(range(0, len(paths), batch_size), desc=description, unit="batch", leave=False):
        images = [read_image(path) for path in paths[start : start + batch_size]]
        scores.extend(prediction.score for prediction in inspector.predict_arrays(images))
    return np.asarray(scores)


def evaluate(
    data: str | Path,
    source: str,
    *,
    split: str = "test",
    revision: str | None = None,
    batch_size: int = 16,
    report: str | Path | None = None,
) -> dict:
    """Score every image of ``data/split`` and return the metrics as a JSON-ready dict.

    Abnormal means every class folder other than NORMAL. Threshold metrics use the model's
    shipped threshold. ``best_f1`` uses the threshold that maximises F1 on this very split, so it
    is optimistic and reported only for comparison with papers that do the same.
    """
    started = time.perf_counter()
    classes = split_folder(data, split, require_abnormal=True)
    inspector = Inspector.from_pretrained(source, revision=revision)

    normal_paths = classes[NORMAL_CLASS]
    abnormal_paths = [path for name, paths in classes.items() if name != NORMAL_CLASS for path in paths]
    normal_scores = score_files(inspector, normal_paths, batch_size, "normal")
    abnormal_scores = score_files(inspector, abnormal_paths, batch_size, "abnormal")

    metrics: dict = {
        "auroc": roc_auc(normal_scores, abnormal_scores),
        "model": source,
        "revision": revision,
        "data": str(Path(data) / split),
        "counts": {name: len(paths) for name, paths in classes.items()},
        "device": str(inspector.device),
    }
    if inspector.threshold is not None:
        metrics["shipped_threshold"] = confusion_metrics(normal_scores, abnormal_scores, inspector.threshold)
    else:
        logger.warning("The model has no calibration.json: threshold metrics are left out")
    best = best_f1_threshold(normal_scores, abnormal_scores)
    metrics["best_f1_threshold_optimistic"] = confusion_metrics(normal_scores, abnormal_scores, best)
    metrics["seconds"] = round(time.perf_counter() - started, 1)

    if report is not None:
        write_report(Path(report), normal_scores, abnormal_scores, inspector.threshold, metrics["auroc"])
        metrics["report"] = str(report)
    return metrics


def write_report(
    folder: Path, normal_scores: np.ndarray, abnormal_scores: np.ndarray, threshold: float | None, auroc: float
) -> None:
    """Write ``roc.png`` and ``histogram.png`` into ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    false_positive_rate, true_positive_rate, _ = roc_points(normal_scores, abnormal_scores)
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(false_positive_rate, true_positive_rate, label=f"AUROC {auroc:.3f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    if threshold is not None:
        point = confusion_metrics(normal_scores, abnormal_scores, threshold)
        axes.scatter([1 - point["specificity"]], [point["sensitivity"]], color="red", zorder=3,
                     label=f"shipped threshold {threshold:.4f}")
    axes.set_xlabel("False positive rate (1 - specificity)")
    axes.set_ylabel("True positive rate (sensitivity)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(folder / "roc.png", dpi=120)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(np.concatenate([normal_scores, abnormal_scores]), bins=40)
    axes.hist(normal_scores, bins=bins, alpha=0.6, label=f"normal ({len(normal_scores)})")
    axes.hist(abnormal_scores, bins=bins, alpha=0.6, label=f"abnormal ({len(abnormal_scores)})")
    if threshold is not None:
        axes.axvline(threshold, color="red", linestyle="--", label="shipped threshold")
    axes.set_xlabel("Anomaly score (higher = more anomalous)")
    axes.set_ylabel("Images")
    axes.legend()
    figure.tight_layout()
    figure.savefig(folder / "histogram.png", dpi=120)
    plt.close(figure)


def format_table(metrics: dict) -> str:
    """Render the metrics as a plain-text table."""
    rows = [("AUROC", f"{metrics['auroc']:.4f}")]
    for key, label in (("shipped_threshold", "shipped threshold"), ("best_f1_threshold_optimistic", "best-F1 threshold (optimistic)")):
        if key in metrics:
            values = metrics[key]
            rows.append((label, f"{values['threshold']:.5f}"))
            for name in ("f1", "accuracy", "sensitivity", "specificity"):
                rows.append((f"  {name}", f"{values[name]:.4f}"))
    rows.append(("images", ", ".join(f"{name} {count}" for name, count in metrics["counts"].items())))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
