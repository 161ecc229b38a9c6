"""A sweep's report: one PNG per metric against batch size, and a markdown table of its runs.

    records = read_run_records("results.jsonl")   # editkit.sweep
    plot(records, "plots/");  print(markdown_table(records))

`fmt` is the one number format of editkit's tables (the CLI's too).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

CF_METRICS = ["score", "efficacy_success", "paraphrase_success", "neighborhood_success",
              "efficacy_magnitude", "paraphrase_magnitude", "neighborhood_magnitude", "ngram_entropy", "reference_score"]
ZSRE_METRICS = ["efficacy", "generalization", "specificity", "loc_accuracy"]
EDIT_METRICS = ["delta_norm_total", "memorization_error", "final_memorization_error", "target_loss"]
SHORT = {
    "score": "S", "efficacy_success": "ES", "paraphrase_success": "PS", "neighborhood_success": "NS",
    "efficacy_magnitude": "EM", "paraphrase_magnitude": "PM", "neighborhood_magnitude": "NM",
    "ngram_entropy": "GE", "reference_score": "RS", "efficacy": "Eff", "generalization": "Gen",
    "specificity": "Spe", "loc_accuracy": "LocAcc", "delta_norm_total": "‖ΔW‖",
    "memorization_error": "mem err", "final_memorization_error": "final mem err", "target_loss": "δ loss",
}


def _label(r: dict) -> str:
    point = ",".join(f"{k}={v}" for k, v in sorted(r.get("point", {}).items()))
    return f"{r['objective']}/{r['strategy']}" + (f" ({point})" if point else "")


def _metric(r: dict, m: str):
    v = r.get("metrics", {}).get(m)
    if v is None:
        v = r.get("edit", {}).get(m)
    return v


def metrics_present(records: list[dict]) -> list[str]:
    names = CF_METRICS + ZSRE_METRICS + EDIT_METRICS
    return [m for m in names if any(_metric(r, m) is not None for r in records)]


def require_matplotlib() -> None:
    """Plots need matplotlib (the `plots` extra). Commands check it before any work, so a run
    never ends without the pictures it was asked for."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError('plots need matplotlib, which is not installed: pip install "editkit[plots]" (or leave out the plot option)') from None


def figure(path: Path, draw, size: tuple[float, float] = (5.5, 3.8), dpi: int = 120, legend: int = 6, outside: bool = False) -> Path:
    """One axes drawn by draw(ax), with its legend (right of the axes if `outside`), saved as a
    PNG at `path` and closed."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    if outside:
        ax.legend(fontsize=legend, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    else:
        ax.legend(fontsize=legend)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot(records: list[dict], out_dir: Path | str, metrics: list[str] | None = None) -> list[Path]:
    """One PNG per metric (metric vs batch size, log x, one line per objective × strategy [× grid
    point], the unedited model dashed) and `summary.png` with the main ones side by side."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = metrics or metrics_present(records)
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(_label(r), []).append(r)
    styles = {"single": "-", "spread": "--"}
    colours = {o: f"C{i}" for i, o in enumerate(dict.fromkeys(r["objective"] for r in records))}

    def draw(ax, m):
        for label, rs in groups.items():
            rs = sorted((r for r in rs if _metric(r, m) is not None), key=lambda r: r["batch_size"])
            if not rs:
                continue
            ax.plot([r["batch_size"] for r in rs], [_metric(r, m) for r in rs], marker="o", ms=3,
                    linestyle=styles.get(rs[0]["strategy"], "-"), color=colours[rs[0]["objective"]], label=label)
        base = [r["baseline"].get(m) for r in records if r.get("baseline", {}).get(m) is not None]
        if base:
            ax.axhline(sum(base) / len(base), color="grey", linestyle=":", linewidth=1, label="unedited")
        ax.set_xscale("log", base=2)
        bs = sorted({r["batch_size"] for r in records})
        ax.set_xticks(bs, [str(b) for b in bs])
        ax.minorticks_off()
        ax.set_xlabel("batch size (edits applied together)")
        ax.set_title(SHORT.get(m, m) + ("" if SHORT.get(m, m) == m else f"  ({m})"), fontsize=9)
        ax.grid(alpha=0.3)

    paths = [figure(out_dir / f"{m}.png", lambda ax, m=m: draw(ax, m)) for m in metrics]
    main = [m for m in metrics if m in ("score", "efficacy_success", "paraphrase_success", "neighborhood_success",
                                        "efficacy", "generalization", "specificity", "final_memorization_error")][:6]
    if main:
        cols = min(3, len(main))
        rows = math.ceil(len(main) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
        for ax, m in zip(axes.flat, main):
            draw(ax, m)
        spare = list(axes.flat)[len(main):]
        for ax in spare:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        if spare:  # the legend fills the first empty panel
            spare[0].legend(handles, labels, loc="center", fontsize=8, frameon=False)
            fig.tight_layout()
        else:
            ncol = min(4, len(labels))
            fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=ncol, frameon=False)
            fig.tight_layout(rect=(0, 0.04 * math.ceil(len(labels) / ncol), 1, 1))
        p = out_dir / "summary.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)
    return paths


def fmt(v, digits: int = 3) -> str:
    """A table cell: floats with `digits` decimals (scientific when tiny or huge), None as "–"."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if v == 0 or 1e-3 <= abs(v) < 1e4 else f"{v:.{max(digits - 2, 1)}e}"
    return str(v)


def markdown_table(records: list[dict], metrics: list[str] | None = None) -> str:
    """One row per run (sorted by objective, strategy, grid point, batch size), unedited rows first."""
    metrics = metrics or metrics_present(records)
    head = ["objective", "strategy", "point", "batch", "N"] + [SHORT.get(m, m) for m in metrics] + ["s/edit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    seen = set()
    for r in sorted(records, key=lambda r: r["n_cases"]):
        if r["n_cases"] in seen:
            continue
        seen.add(r["n_cases"])
        vals = [r["baseline"].get(m) for m in metrics]
        lines.append("| " + " | ".join(["(unedited)", "", "", "", str(r["n_cases"])] + [fmt(v) for v in vals] + [""]) + " |")
    order = {o: i for i, o in enumerate(dict.fromkeys(r["objective"] for r in records))}
    for r in sorted(records, key=lambda r: (order[r["objective"]], r["strategy"], json.dumps(r.get("point", {}), sort_keys=True), r["batch_size"])):
        point = ",".join(f"{k}={v}" for k, v in sorted(r.get("point", {}).items()))
        vals = [_metric(r, m) for m in metrics]
        lines.append("| " + " | ".join([r["objective"], r["strategy"], point, str(r["batch_size"]), str(r["n_cases"])]
                                        + [fmt(v) for v in vals] + [fmt(r["seconds"]["edit_per_request"])]) + " |")
    return "\n".join(lines)

