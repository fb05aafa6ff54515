"""Population stability index (PSI) between a reference population (training) and tonight's.

PSI = sum_b (p_b - q_b) * ln(p_b / q_b) over bins b, where q is the reference share and p the current
share. Bins are the reference's deciles (``BINS`` quantile edges, open at both ends) plus one bin for
missing values, so a feature that starts arriving empty shows up as drift. Shares are floored at
``EPSILON`` so an empty bin does not give an infinite PSI.

Values are rounded to 4 significant digits first: billing ratios such as the effective fee rate sit on
a few exact values (85.0003 bps, 84.9998 bps) and float noise would otherwise flip them across a
quantile edge and fake a shift.

Thresholds (the usual credit-risk convention): PSI < 0.10 stable, 0.10-0.25 ``warn``,
>= 0.25 ``retrain`` — the model is marked for retraining (registered-model tag ``needs_retraining``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 10
EPSILON = 1e-4
WARN_PSI = 0.10
RETRAIN_PSI = 0.25


def _rounded(values) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.where(np.isfinite(x) & (x != 0), np.floor(np.log10(np.abs(x))), 0.0)
        scale = 10.0 ** (3 - magnitude)
        return np.where(np.isfinite(x), np.round(x * scale) / scale, x)


def reference_bins(values, bins: int = BINS) -> dict:
    """Edges and shares of the reference population (JSON-serialisable; stored with the model run)."""
    x = _rounded(values)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        edges: list[float] = []
    else:
        edges = sorted(set(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]).tolist()))
    return {"edges": edges, "shares": _shares(x, edges).tolist()}


def _shares(x: np.ndarray, edges: list[float]) -> np.ndarray:
    finite = np.isfinite(x)
    counts = np.bincount(np.searchsorted(np.asarray(edges), x[finite], side="right"),
                         minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, float((~finite).sum()))  # the missing-value bin
    return counts / max(x.size, 1)


def psi(reference: dict, values) -> float:
    q = np.maximum(np.asarray(reference["shares"], dtype=float), EPSILON)
    p = np.maximum(_shares(_rounded(values), reference["edges"]), EPSILON)
    return float(np.sum((p - q) * np.log(p / q)))


def status(value: float) -> str:
    if value >= RETRAIN_PSI:
        return "retrain"
    if value >= WARN_PSI:
        return "warn"
    return "stable"


def reference_profile(features: pd.DataFrame, scores: dict[str, np.ndarray]) -> dict:
    """Reference bins for every feature column and every named score."""
    return {"features": {c: reference_bins(features[c]) for c in features.columns},
            "scores": {name: reference_bins(v) for name, v in scores.items()}}


def drift_report(profile: dict, features: pd.DataFrame, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per feature and score: kind, name, psi, status (sorted by psi, highest first)."""
    rows = []
    for name, ref in profile["features"].items():
        if name in features:
            value = psi(ref, features[name])
            rows.append({"kind": "feature", "name": name, "psi": value, "status": status(value)})
    for name, ref in profile["scores"].items():
        if name in scores:
            value = psi(ref, scores[name])
            rows.append({"kind": "score", "name": name, "psi": value, "status": status(value)})
    return pd.DataFrame(rows, columns=["kind", "name", "psi", "status"]).sort_values(
        "psi", ascending=False, ignore_index=True)
