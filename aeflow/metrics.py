"""Detection metrics for anomaly scores where higher means more anomalous."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def roc_auc(normal_scores: np.ndarray, anomaly_scores: np.ndarray) -> float:
    """Return the area under the ROC curve with anomalies as the positive class."""
    labels = np.concatenate([np.zeros(len(normal_scores)), np.ones(len(anomaly_scores))])
    return float(roc_auc_score(labels, np.concatenate([normal_scores, anomaly_scores])))


def roc_points(normal_scores: np.ndarray, anomaly_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return false positive rates, true positive rates and thresholds of the ROC curve."""
    labels = np.concatenate([np.zeros(len(normal_scores)), np.ones(len(anomaly_scores))])
    return roc_curve(labels, np.concatenate([normal_scores, anomaly_scores]))


def confusion_metrics(normal_scores: np.ndarray, anomaly_scores: np.ndarray, threshold: float) -> dict[str, float | int]:
    """Compute counts, sensitivity, specificity, accuracy and F1 at ``threshold`` (score >= threshold is anomalous)."""
    true_positive = int(np.sum(np.asarray(anomaly_scores) >= threshold))
    false_negative = len(anomaly_scores) - true_positive
    false_positive = int(np.sum(np.asarray(normal_scores) >= threshold))
    true_negative = len(normal_scores) - false_positive
    sensitivity = true_positive / max(1, len(anomaly_scores))
    specificity = true_negative / max(1, len(normal_scores))
    precision = true_positive / max(1, true_positive + false_positive)
    f1 = 2 * precision * sensitivity / max(1e-12, precision + sensitivity)
    accuracy = (true_positive + true_negative) / max(1, len(normal_scores) + len(anomaly_scores))
    return {
        "threshold": float(threshold),
        "true_positive": true_positive,
        "false_positive": false_positive,
        "true_negative": true_negative,
        "false_negative": false_negative,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "precision": precision,
        "accuracy": accuracy,
        "f1": f1,
    }


def best_f1_threshold(normal_scores: np.ndarray, anomaly_scores: np.ndarray) -> float:
    """Return the threshold that maximises F1 on these scores (optimistic: it peeks at the labels)."""
    candidates = np.unique(np.concatenate([normal_scores, anomaly_scores]))
    return float(max(candidates, key=lambda t: confusion_metrics(normal_scores, anomaly_scores, t)["f1"]))
