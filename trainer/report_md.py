"""The human-readable evaluation report: ``report.md`` plus a confusion-matrix PNG (cv2).

Everything here reads the JSON report dict, so report.md never says anything
report.json does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

CELL = 72
MARGIN = 130


def confusion_png(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path) -> Path:
    """Draw a row-normalised confusion matrix (rows: true, columns: predicted) as a PNG."""
    cm = np.asarray(matrix, dtype=np.float64)
    k = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = (MARGIN + k * CELL + 20, MARGIN + k * CELL + 20)
    img = np.full((size[0], size[1], 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(k):
        for j in range(k):
            x0, y0 = MARGIN + j * CELL, MARGIN + i * CELL
            blue = int(255 - 200 * share[i, j])  # white (0 %) to deep blue (100 %)
            cv2.rectangle(img, (x0, y0), (x0 + CELL, y0 + CELL), (255, blue, blue), -1)
            cv2.rectangle(img, (x0, y0), (x0 + CELL, y0 + CELL), (120, 120, 120), 1)
            ink = (255, 255, 255) if share[i, j] > 0.55 else (0, 0, 0)
            cv2.putText(img, f"{int(cm[i, j])}", (x0 + 8, y0 + 30), font, 0.6, ink, 1, cv2.LINE_AA)
            cv2.putText(img, f"{share[i, j]:.0%}", (x0 + 8, y0 + 55), font, 0.45, ink, 1,
                        cv2.LINE_AA)
    for n, label in enumerate(labels):
        text = label[:12]
        cv2.putText(img, text, (8, MARGIN + n * CELL + CELL // 2 + 5), font, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
        cv2.putText(img, text, (MARGIN + n * CELL + 4, MARGIN - 10), font, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.putText(img, "true \\ predicted", (8, 40), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")
    return path


def _f(value: Any, fmt: str = ".4f") -> str:
    return "n/a" if value is None else format(float(value), fmt)


def _metrics_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    out = ["| split / slice | n | accuracy | macro F1 | ROC-AUC | ECE (T=1) | ECE (T fitted) |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        out.append(
            f"| {name} | {r['samples']} | {_f(r['accuracy'])} | {_f(r['macro_f1'])} | "
            f"{_f(r.get('roc_auc'))} | {_f(r.get('ece_uncalibrated'))} | {_f(r.get('ece'))} |"
        )
    return out


def _shift_lines(shifts: dict[str, Any] | None) -> list[str]:
    """The shifted-test-images table: accuracy and PSI per shift beside the unshifted floor."""
    if not shifts:
        return []
    lines = [
        "",
        f"## Camera shifts on the test images (severity {shifts['severity']:g})",
        "",
    ]
    if shifts.get("skipped"):
        return [*lines, f"Skipped: {shifts['skipped']}."]
    lines += [
        "PSI against the reference profile, binned with its edges (< 0.1 stable, "
        "0.1-0.25 moderate, > 0.25 major drift).",
        "",
        "| shift | accuracy | drop (points) | mean confidence | PSI confidence | "
        "PSI embedding (max axis) | PSI brightness |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = {"none (test split)": {**shifts["baseline"], "accuracy_drop_points": 0.0},
            **shifts["shifts"]}
    for name, r in rows.items():
        bright = r.get("psi_input_stats", {}).get("brightness")
        lines.append(
            f"| {name} | {r['accuracy']:.4f} | {r['accuracy_drop_points']:+.2f} | "
            f"{r['mean_confidence']:.3f} | {r['psi_confidence']:.3f} | "
            f"{r['psi_embedding_max']:.3f} | {_f(bright, '.3f')} |"
        )
    return lines


def _stage_lines(stages: list[dict[str, Any]] | None) -> list[str]:
    """One row per stage run before the report was written, with its key figures."""
    if not stages:
        return []
    lines = ["", "## Stages", "", "| stage | status | seconds | key figures |",
             "|---|---|---:|---|"]
    for st in stages:
        figures = ", ".join(
            f"{k} {format(v, '.4g') if isinstance(v, float) else v}"
            for k, v in st["figures"].items()
        )
        lines.append(f"| {st['name']} | {st['status']} | {st['seconds']:.2f} | "
                     f"{figures.replace('|', '/')} |")
    return lines


def _quality_lines(quality: dict[str, Any] | None) -> list[str]:
    if not quality:
        return []
    lines = ["", "## Quality gate", "",
             f"**{quality['status']}**: test accuracy {quality['test_accuracy']:.4f} on "
             f"{quality['test_samples']} images; always answering {quality['majority_label']!r} "
             f"scores {quality['majority_accuracy']:.4f} (one-sided binomial p = "
             f"{quality['p_value_vs_majority']:.3g}, needs <= {quality['alpha']}); floor "
             f"{quality['min_test_accuracy']}."]
    lines += [f"- {reason}" for reason in quality["reasons"]]
    return lines


def render_markdown(report: dict[str, Any], confusion_image: str | None) -> str:
    """report.md text from the report dict."""
    ev = report["evaluation"]
    test = ev["test"]
    slices = {f"slice {k}": v for k, v in (ev.get("slices") or {}).items()}
    lines = [
        f"# {report['model_name']}: evaluation report",
        "",
        f"- created: {report['created_at']}",
        f"- dataset version: `{report['dataset']['version']}`",
        f"- code version: `{report['lineage']['code_version']}`",
        f"- primary artifact: **{report['model']['precision']}** "
        f"(`{report['model']['sha256'][:12]}`) - {report.get('primary_reason', '')}",
        *_quality_lines(ev.get("quality")),
        "",
        "## Test split",
        "",
        *_metrics_table({"test": test, **slices}),
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, c in test["per_class"].items():
        lines.append(
            f"| {label} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | "
            f"{int(c['support'])} |"
        )
    cal = report["calibration"]
    lines += [
        "",
        f"## Calibration (temperature scaling, fitted on the "
        f"{cal.get('fitted_on', 'validation images')})",
        "",
        f"temperature {cal['temperature']:.3f}: validation NLL {cal['nll_before']:.4f} -> "
        f"{cal['nll_after']:.4f}, ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f}; "
        f"test ECE {_f(test.get('ece_uncalibrated'))} -> {_f(test.get('ece'))}.",
    ]
    if confusion_image:
        lines += ["", "## Confusion matrix (test)", "", f"![confusion matrix]({confusion_image})"]
    gate = report.get("quantization")
    if gate:
        lines += [
            "",
            "## Quantization gate (int8 vs fp32, this CPU)",
            "",
            "| | fp32 | int8 | int8 / fp32 |",
            "|---|---:|---:|---:|",
            f"| test accuracy | {gate['fp32_accuracy']:.4f} | {gate['int8_accuracy']:.4f} | "
            f"drop {gate['accuracy_drop_points']:+.2f} points (budget {gate['budget_points']:g}) |",
            f"| latency (ms, batch {gate['latency_batch']}, {gate['latency_threads']} thread) | "
            f"{gate['fp32_latency_ms']:.3f} | {gate['int8_latency_ms']:.3f} | "
            f"{gate['latency_ratio']:.2f} |",
            f"| size (bytes) | {gate['fp32_size_bytes']} | {gate['int8_size_bytes']} | "
            f"{gate['size_ratio']:.2f} |",
            "",
            f"Verdict: {'int8' if gate['ship_int8'] else 'fp32'} is primary.",
        ]
    lines += _shift_lines(ev.get("shifts"))
    val = report.get("data_validation")
    if val:
        lines += ["", "## Data validation", ""]
        lines += [f"- {w}" for w in val["warnings"]] or ["- no problems found"]
        lines.append(
            f"- class counts: {val['class_balance']['counts']}; brightness mean "
            f"{_f(val['brightness'].get('mean'), '.1f')}"
        )
    train = report["training"]
    lines += [
        "",
        "## Training",
        "",
        f"{train['epochs_run']} epochs on {train['device']} in {train['seconds']:.1f} s "
        f"({train['images_per_s']:.0f} images/s), best validation accuracy "
        f"{train['best_val_accuracy']:.4f} at epoch {train['best_epoch']}.",
    ]
    lines += [*_stage_lines(report.get("stages")), ""]
    return "\n".join(lines)


def write_markdown(report: dict[str, Any], out_dir: Path) -> Path:
    """Write ``confusion_matrix.png`` and ``report.md`` into ``out_dir``; return report.md."""
    cm = report["evaluation"]["test"]["confusion_matrix"]
    png = confusion_png(cm["rows_true_cols_pred"], cm["labels"], out_dir / "confusion_matrix.png")
    path = out_dir / "report.md"
    path.write_text(render_markdown(report, png.name))
    return path


__all__ = ["confusion_png", "render_markdown", "write_markdown"]
