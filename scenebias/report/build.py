"""The report: reports/<preset>/index.html plus Markdown/CSV tables and PNG plots, readable offline."""
from __future__ import annotations

import glob
import json
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .. import layout
from ..analysis.calibration import calibration_gates, gate_sets
from ..data.sources import NO_GROUND_TRUTH, primary_ground_truth, real_flavours
from ..analysis.stats import format_ci, mean_ci
from ..config import results_dir
from ..data.manifest import MANIFEST_FORMAT
from ..io import atomic_path, write_json, write_text
from ..provenance import REPO_ROOT
from ..resolve import dataset_manifests, split
from . import table_pages as paper_pages
from .page import CSS, html_page, render
from .summary import results_markdown
from .values import gate_values, markdown_table
from .plotting import pyplot, seaborn


def _save_table(frame: pd.DataFrame, out_dir: Path, name: str) -> None:
    """Writes `frame` as tables/<name>.csv and tables/<name>.md."""
    tables = out_dir / "tables"
    with atomic_path(tables / f"{name}.csv") as tmp:
        frame.to_csv(tmp, index=False)
    write_text(tables / f"{name}.md", markdown_table(frame))


def _values(df: pd.DataFrame, **where: Any) -> pd.Series:
    """The per-seed values of the rows matching `where` (column=value), indexed by seed."""
    mask = pd.Series(True, index=df.index)
    for key, value in where.items():
        mask &= df[key] == value
    return df[mask].set_index("seed")["value"]


def accuracy_table(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per run and protocol: biased vs scene-swapped top-1 (mean ± 95% CI over seeds) and the paired gap."""
    shown, raw = [], []
    cls = df[df["metric"].isin(["top1", "mean_class_acc", "contrasted_acc"])]
    for (role, run, protocol), g in cls.groupby(["role", "run", "protocol"], sort=False):
        biased = _values(g, test_set="biased", metric="top1")
        swapped = _values(g, test_set="swapped", metric="top1")
        gap = (biased - swapped).dropna()
        stats = {
            "biased": mean_ci(biased), "swapped": mean_ci(swapped), "gap": mean_ci(gap),
            "contrasted": mean_ci(_values(g, test_set="swapped", metric="contrasted_acc")),
            "biased_mca": mean_ci(_values(g, test_set="biased", metric="mean_class_acc")),
            "static_twin": mean_ci(_values(g, test_set="swapped_static", metric="top1")),
        }
        shown.append({"run": run, "role": role, "protocol": protocol, "seeds": stats["biased"][2],
                      "biased top-1 %": format_ci(*stats["biased"][:2]),
                      "swapped top-1 %": format_ci(*stats["swapped"][:2]),
                      "gap (pp)": format_ci(*stats["gap"][:2]),
                      "contrasted %": format_ci(*stats["contrasted"][:2]),
                      "static twin top-1 %": format_ci(*stats["static_twin"][:2]),
                      "biased mean-class %": format_ci(*stats["biased_mca"][:2])})
        raw.append({"run": run, "role": role, "protocol": protocol,
                    **{f"{k}_mean": v[0] for k, v in stats.items()},
                    **{f"{k}_ci95": v[1] for k, v in stats.items()}, "seeds": stats["biased"][2]})
    order = {"calibration": 0, "reference": 1, "method": 2}
    shown_df = pd.DataFrame(shown)
    raw_df = pd.DataFrame(raw)
    if len(shown_df):
        key = shown_df["role"].map(order)
        shown_df = shown_df.assign(_k=key).sort_values(["_k", "run", "protocol"]).drop(columns="_k")
        raw_df = raw_df.loc[shown_df.index]
    return shown_df.reset_index(drop=True), raw_df.reset_index(drop=True)


def retrieval_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per run, variant and query set: each R@k (mean ± 95% CI over seeds), one column per k."""
    ret = df[(df["protocol"] == "retrieval") & df["metric"].str.contains("R@")]
    rows = []
    for (run, test_set, metric), g in ret.groupby(["run", "test_set", "metric"], sort=True):
        rows.append({"run": run, "queries": test_set, "metric": metric,
                     "value %": format_ci(*mean_ci(g["value"])[:2]), "seeds": g["seed"].nunique()})
    if not rows:
        return pd.DataFrame(rows)
    table = pd.DataFrame(rows)
    table["variant"] = table["metric"].str.extract(r"^(\w+)/", expand=False).fillna("")
    table["k"] = table["metric"].str.extract(r"(R@\d+)", expand=False)
    wide = table.pivot_table(index=["run", "variant", "queries"], columns="k", values="value %",
                             aggfunc="first").reset_index().rename_axis(columns=None)
    ks = sorted([c for c in wide.columns if str(c).startswith("R@")], key=lambda c: int(str(c)[2:]))
    return wide[["run", "variant", "queries", *ks]]


def compute_table(benchmarks: list[Path]) -> pd.DataFrame:
    """One row per job from Snakemake `benchmark:` files, named by their path under benchmarks/."""
    rows = []
    for path in benchmarks:
        if not path.exists():
            continue
        bench = pd.read_csv(path, sep="\t")
        parts = path.with_suffix("").parts
        job = " ".join(parts[parts.index("benchmarks") + 1:] if "benchmarks" in parts else parts[-2:])
        rows.append({"job": job, "stage": job.split(" ")[0], "wall s": round(float(bench["s"].iloc[0]), 1),
                     "max RSS MB": round(float(bench["max_rss"].iloc[0]), 0) if "max_rss" in bench else math.nan})
    return pd.DataFrame(rows, columns=["job", "stage", "wall s", "max RSS MB"])


def _plot_accuracy(raw: pd.DataFrame, chance: float, path: Path) -> None:
    """plots/biased_vs_swapped.png: each run's biased and swapped top-1 with its CI, and chance."""
    plt, sns = pyplot(), seaborn()
    long = [{"run": "(no runs)", "test set": t, "top-1 %": 0.0, "ci": 0.0} for t in ("biased", "swapped")] \
        if raw.empty else []
    for _, r in raw.iterrows():
        label = f"{r['run']}\n({r['protocol']})"
        for test_set in ("biased", "swapped"):
            long.append({"run": label, "test set": test_set, "top-1 %": 100 * r[f"{test_set}_mean"],
                         "ci": 100 * (0 if math.isnan(r[f"{test_set}_ci95"]) else r[f"{test_set}_ci95"])})
    data = pd.DataFrame(long)
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * data["run"].nunique() + 2), 4.2))
    sns.barplot(data=data, x="run", y="top-1 %", hue="test set", ax=ax, palette=["#4c78a8", "#e45756"],
                errorbar=None)
    for bar, (_, row) in zip(ax.patches, data.sort_values(["test set"], kind="stable").iterrows()):
        ax.errorbar(bar.get_x() + bar.get_width() / 2, row["top-1 %"], yerr=row["ci"], color="black",
                    capsize=3, lw=1)
    ax.axhline(100 * chance, ls="--", color="grey", lw=1)
    ax.text(ax.get_xlim()[1], 100 * chance, " chance", va="center", ha="left", color="grey", fontsize=9)
    ax.set_ylim(0, 100)
    ax.set_xlabel("")
    ax.set_title("Biased vs scene-swapped test accuracy (mean ± 95% CI over seeds)")
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def _plot_first_screen(calibration: dict[str, Any], raw: pd.DataFrame, chance: float, preset: str,
                       path: Path) -> None:
    """plots/first_screen.png, the report's first screen at a glance: every set's calibration gates (left) and the
    linear-probe leaderboard's scene-swapped top-1 with its 95% CI and chance (right)."""
    plt = pyplot()
    sets = [(calibration.get("primary") or "primary", calibration)] + list((calibration.get("sets") or {}).items())
    letters = sorted({g["gate"] for _, found in sets for g in found.get("gates", [])})
    rows = raw[(raw["protocol"] == "linear") & raw["role"].isin(["method", "reference"])] if len(raw) else raw
    key = "swapped" if len(rows) and rows["swapped_mean"].notna().any() else "biased"
    rows = rows.sort_values(f"{key}_mean", kind="stable") if len(rows) else rows
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, max(3.2, 0.28 * len(rows) + 1.4)),
                                      gridspec_kw={"width_ratios": [1, 1.4]})
    left.set_xlim(0, len(letters) + 2.2)
    left.set_ylim(0, len(sets))
    left.axis("off")
    for i, (name, found) in enumerate(sets):
        y = len(sets) - i - 0.5
        left.text(0.05, y, name, va="center", fontsize=9, family="monospace")
        by_letter = {g["gate"]: g["status"] for g in found.get("gates", [])}
        for j, letter in enumerate(letters):
            status = by_letter.get(letter)
            if status is None:
                continue
            left.add_patch(plt.Rectangle((2.2 + j + 0.05, y - 0.4), 0.9, 0.8, color=GATE_COLOURS[status]))
            left.text(2.2 + j + 0.5, y, f"({letter}) {status}", ha="center", va="center", fontsize=7.5)
    left.set_title("calibration gates: can the data decide?", fontsize=10)
    if len(rows):
        y = range(len(rows))
        right.barh(list(y), 100 * rows[f"{key}_mean"], xerr=100 * rows[f"{key}_ci95"].fillna(0),
                   color=["#e45756" if r == "moco+oracle_mask" else "#4c78a8" for r in rows["run"]],
                   error_kw={"lw": 1, "capsize": 2})
        right.set_yticks(list(y), list(rows["run"]), fontsize=8)
        right.axvline(100 * chance, ls="--", color="grey", lw=1)
        right.text(100 * chance, -0.7, " chance", color="grey", fontsize=8, va="top")
    right.set_xlabel(f"{key} top-1 %, linear probe (mean ± 95% CI over seeds)")
    right.set_title("who keeps the motion? (red: the ground-truth-mask positive control)", fontsize=10)
    fig.suptitle(f"scenebias, preset {preset}: the primary set's gates {calibration['overall']}", fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _plot_training(logs: dict[str, list[dict[str, Any]]], path: Path) -> bool:
    """plots/training_curves.png: each logged metric per epoch and run; False (and a placeholder) without logs."""
    plt = pyplot()
    metrics = ["loss", "instance_acc", "pos_sim", "neg_sim", "queue_same_video", "train_acc"]
    present = [m for m in metrics if any(m in rec for log in logs.values() for rec in log)]
    if not present:  # still write the figure: it is a declared output of the report rule
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no run was trained", ha="center", va="center")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
        plt.close(fig)
        return False
    fig, axes = plt.subplots(1, len(present), figsize=(3.2 * len(present), 3), squeeze=False)
    for ax, metric in zip(axes[0], present):
        for name, log in sorted(logs.items()):
            points = [(r["epoch"], r[metric]) for r in log if metric in r]
            if points:
                ax.plot(*zip(*points), label=name, lw=1.2)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return True


def _html_table(frame: pd.DataFrame) -> str:
    """`frame` as an HTML table (text escaped, – for missing values), or a note that it has no rows."""
    if frame.empty:
        return "<p class='note'>(no rows)</p>"
    return frame.to_html(index=False, escape=True, border=0, na_rep="–")


def mask_quality_table(mq: pd.DataFrame) -> pd.DataFrame:
    """Variant × β: IoU with the actor's clip union and per frame, precision, recall (mean ± 95% CI over videos),
    areas and the IoU ceiling of a mask of ⌊β·H·W⌋ pixels."""
    def ci(metric: str) -> pd.Series:
        """The metric's mean ± 95% CI per row, as text."""
        return pd.Series([format_ci(m, h, scale=1.0, digits=2) for m, h in zip(mq[f"{metric}_mean"],
                                                                               mq[f"{metric}_ci95"])], index=mq.index)

    return pd.DataFrame({
        "variant": mq["variant"], "β": mq["beta"].map(lambda b: f"{b:g}"), "videos": mq["videos"],
        "IoU (clip union)": ci("iou"), "IoU (per frame)": ci("iou_frames"), "precision": ci("precision"),
        "recall": ci("recall"), "mask area %": (100 * mq["mask_area"]).round(1),
        "actor area %": (100 * mq["actor_area"]).round(1), "IoU ceiling": mq["iou_ceiling"].round(2)})


def mask_quality_ranking(mq: pd.DataFrame) -> str:
    """One sentence, computed from the numbers: variants ranked by mean IoU (clip union) at each β, and how the
    full FAME mask compares with the seed map alone."""
    parts = []
    for beta, g in mq.groupby("beta", sort=True):
        g = g.sort_values("iou_mean", ascending=False, kind="stable")
        shown = [f"{v:.2f}" for v in g["iou_mean"]]
        text = f"{g['variant'].iloc[0]} {shown[0]}"
        for variant, value, previous in zip(g["variant"].iloc[1:], shown[1:], shown):
            text += f"{' ≈ ' if value == previous else ' > '}{variant} {value}"  # ≈: equal at 2 decimals
        parts.append(f"β = {beta:g}: {text}")
    sentence = "Mean IoU with the actor's clip-union mask, highest first — " + "; ".join(parts)
    fame = mq[mq["variant"] == "fame[paper]"].set_index("beta")["iou_mean"]
    seed = mq[mq["variant"] == "seed"].set_index("beta")["iou_mean"]
    common = fame.index.intersection(seed.index)
    if len(common):
        below = int((fame[common] < seed[common]).sum())
        sentence += (f"; the full colour-statistics mask (fame[paper]) scores below the seed map alone at {below} "
                     f"of {len(common)} β values")
    return sentence + "."


def _plot_mask_quality(mq: pd.DataFrame, path: Path) -> None:
    """plots/mask_quality.png: IoU vs β per variant with CIs and the size ceiling; a placeholder without data."""
    plt, sns = pyplot(), seaborn()
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if mq.empty:
        ax.axis("off")
        ax.text(0.5, 0.5, "mask quality not measured", ha="center", va="center")
    else:
        order = list(dict.fromkeys(mq["variant"]))
        palette = dict(zip(order, sns.color_palette("tab10", len(order))))
        sns.lineplot(data=mq, x="beta", y="iou_mean", hue="variant", hue_order=order, palette=palette,
                     style="variant", markers=True, dashes=False, ax=ax)
        for variant, g in mq.groupby("variant", sort=False):
            ax.errorbar(g["beta"], g["iou_mean"], yerr=g["iou_ci95"].fillna(0), fmt="none",
                        ecolor=palette[variant], capsize=3, lw=1)
        ceiling = mq[mq["mask"] != "grid"].groupby("beta")["iou_ceiling"].mean()
        ax.plot(ceiling.index, ceiling.values, ls="--", color="grey", lw=1, label="ceiling (⌊βHW⌋ px)")
        ax.set_ylim(0, 1)
        ax.set_xticks(sorted(mq["beta"].unique()))
        ax.set_xlabel("β (mask area fraction)")
        ax.set_ylabel("IoU with actor (clip union)")
        ax.set_title("FAME mask quality vs ground truth (mean ± 95% CI over videos)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def mask_quality_section(csv: Path, out_dir: Path, ground_truth: bool = True) -> str:
    """The "FAME mask quality vs ground truth" section: writes tables/mask_quality.{csv,md} and
    plots/mask_quality.png (a placeholder when `csv` does not exist) and returns the section's HTML
    (templates/mask_quality.html.j2) from the measured values. Without ground truth (real data) there is nothing to
    compare with, and the section says so."""
    mq = pd.read_csv(csv, keep_default_na=False, na_values=[""]) if ground_truth and csv.exists() else pd.DataFrame()
    shown = mask_quality_table(mq) if len(mq) else pd.DataFrame()
    _save_table(shown, out_dir, "mask_quality")
    _plot_mask_quality(mq, out_dir / "plots" / "mask_quality.png")
    values = {"ground_truth": ground_truth, "measured": not mq.empty, "no_ground_truth": NO_GROUND_TRUTH,
              "csv": str(csv)}
    if len(mq):
        first = mq.iloc[0]  # the videos and the clip geometry are the same on every row
        values.update(ranking=mask_quality_ranking(mq), flavour=str(first["flavour"]), table=_html_table(shown),
                      **{key: int(first[key]) for key in ("videos", "clip_len", "stride", "crop_size")})
    return render("mask_quality.html.j2", **values)


def datasets_section(cfg: dict[str, Any]) -> str:
    """Which data every number came from (templates/datasets.html.j2): each real root's manifest counts and the
    videos skipped (on_missing: skip) or found undecodable; none for the generated set."""
    rows, skipped = [], []
    for flavour, path in sorted(dataset_manifests(cfg).items()):
        if flavour not in (cfg["data"].get("real") or {}):
            continue
        manifest = json.loads(Path(path).read_text()) if Path(path).is_file() else None
        if manifest is None or manifest.get("format") != MANIFEST_FORMAT:
            rows.append({"flavour": flavour, "root": cfg["data"]["real"][flavour]["root"], "files": "–",
                         "missing (skipped)": "–", "undecodable": "–"})
            continue
        counts = manifest["counts"]
        rows.append({"flavour": flavour, "root": manifest["where"]["root"], "files": counts["files"],
                     "missing (skipped)": counts["missing"],
                     "undecodable": "not probed" if counts["undecodable"] is None else counts["undecodable"]})
        skipped += [f"{flavour}: {m['path']} ({m['split_file']}:{m['line']})" for m in manifest["missing"]]
        skipped += [f"{flavour}: {u['path']} (undecodable: {u['error']})" for u in manifest.get("undecodable") or []]
    return render("datasets.html.j2", real_roots=bool(rows), on_missing=cfg["data"]["on_missing"],
                  table=_html_table(pd.DataFrame(rows)), skipped=skipped)


GATE_COLOURS = {"pass": "#d9f2d9", "fail": "#f8d0d0", "missing": "#fff1c2", "not available": "#eceff1"}


def calibration_section(calibration: dict[str, Any]) -> str:
    """The report's first screen (templates/calibration.html.j2): every gate with its rule, values and verdict, and
    the fine-tuning sets' gates; a red banner above everything when one fails or lacks its runs."""
    overall = calibration["overall"]
    detail = calibration["gates"][0]["detail"] if overall == "not available" else ""
    return render("calibration.html.j2", overall=overall, detail=detail, gates=_gate_cells(calibration["gates"]),
                  fine_tuning_sets="" if overall == "not available" else sets_section(calibration.get("sets") or {}))


def _gate_cells(gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each gate as the report shows it: letter, name, status, its colour, rule and measured values in words."""
    return [{"gate": g["gate"], "name": g["name"], "status": g["status"], "colour": GATE_COLOURS[g["status"]],
             "rule": g["rule"], "measured": gate_values(g)} for g in gates]


def sets_section(sets: dict[str, Any]) -> str:
    """The fine-tuning sets beside the primary (templates/fine_tuning_sets.html.j2), one row each: the set's
    family, overall verdict and every gate's verdict and values; empty without such sets."""
    return render("fine_tuning_sets.html.j2", sets=[
        {"name": name, "family": found["family"], "overall": found["overall"],
         "colour": GATE_COLOURS[found["overall"]], "gates": _gate_cells(found["gates"])}
        for name, found in sets.items()])


def skipped_section(cfg: dict[str, Any]) -> str:
    """The runs planning dropped because the data lacks the ground truth they need, each with why
    (templates/skipped_runs.html.j2); empty when none was."""
    return render("skipped_runs.html.j2", skipped=cfg.get("skipped_runs") or {}, no_ground_truth=NO_GROUND_TRUTH)


def leaderboard(raw: pd.DataFrame, protocol: str = "linear") -> pd.DataFrame:
    """Every method and reference run on `protocol`, ranked by scene-swapped top-1 (mean over seeds); on data
    without a scene-swapped copy (real roots), by the biased (official) test split's top-1."""
    if raw.empty:
        return pd.DataFrame()
    rows = raw[(raw["protocol"] == protocol) & raw["role"].isin(["method", "reference"])]
    key = "swapped_mean" if rows["swapped_mean"].notna().any() else "biased_mean"
    rows = rows.sort_values(key, ascending=False, kind="stable")
    marks = {"moco": " (baseline)", "moco+oracle_mask": " (positive control)"}
    return pd.DataFrame({
        "rank": range(1, len(rows) + 1),
        "run": [r + marks.get(r, "") for r in rows["run"]],
        "role": rows["role"].to_numpy(),
        "swapped top-1 %": [format_ci(m, h) for m, h in zip(rows["swapped_mean"], rows["swapped_ci95"])],
        "biased top-1 %": [format_ci(m, h) for m, h in zip(rows["biased_mean"], rows["biased_ci95"])],
        "contrasted %": [format_ci(m, h) for m, h in zip(rows["contrasted_mean"], rows["contrasted_ci95"])],
        "seeds": rows["seeds"].to_numpy(),
    })


def _verdicts(raw: pd.DataFrame) -> list[dict[str, str]]:
    """Per method row with a gap: its biased and swapped top-1 (%), the gap (pp) and what the gap's 95% interval
    finds: "one seed" (no interval), "shortcut" (above 0), "no shortcut" (below 0) or "not significant"."""
    out = []
    if raw.empty:  # no evaluation yet: the report says so instead of failing
        return out
    for _, r in raw[raw["role"] == "method"].iterrows():
        gap, half = r["gap_mean"], r["gap_ci95"]
        if math.isnan(gap):
            continue
        finding = ("one seed" if math.isnan(half) else "shortcut" if gap - half > 0
                   else "no shortcut" if gap + half < 0 else "not significant")
        out.append({"run": r["run"], "protocol": r["protocol"], "biased": f"{100 * r['biased_mean']:.1f}",
                    "swapped": f"{100 * r['swapped_mean']:.1f}", "gap": format_ci(gap, half), "finding": finding})
    return out


def build_report(cfg: dict[str, Any], metrics_csv: Path, out_dir: Path, benchmarks: list[Path],
                 mask_quality_csv: Path | None = None, table_records: list[Path] | None = None) -> Path:
    """Writes index.html (templates/index.html.j2, filled in with the values and sections computed here), results.md,
    the tables, plots and pages. `mask_quality_csv` defaults to <results>/analysis/mask_quality.csv (the
    mask_quality rule's output); `table_records` are the paper tables' JSON records (`scenebias table`), one page
    each."""
    every = pd.read_parquet(metrics_csv) if metrics_csv.suffix == ".parquet" else pd.read_csv(metrics_csv)
    primary = cfg["data"]["downstream_flavour"]
    if "downstream" in every.columns:
        every["downstream"] = every["downstream"].fillna(primary)
    # the overview's biased/swapped analysis is on the primary downstream set; the gates read every set's
    df = every[every["downstream"] == primary] if "downstream" in every.columns else every
    calibration = calibration_gates(every, ground_truth=primary_ground_truth(cfg), sets=gate_sets(cfg),
                                    primary=primary if "downstream" in every.columns else None)
    records = paper_pages.gate_claims(paper_pages.load_records(table_records or []), calibration, primary)
    for record in records:
        paper_pages.write_table_page(record, out_dir, CSS)
    papers_section = paper_pages.overview_section(records) + paper_pages.write_method_pages(records, cfg, out_dir, CSS)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = split(cfg, cfg["data"]["downstream_flavour"], "test").class_names
    chance = 1.0 / len(classes)

    acc, raw = accuracy_table(df)
    _save_table(acc, out_dir, "accuracy")
    ground_truth = primary_ground_truth(cfg)
    write_json(out_dir / "calibration.json", calibration)
    board = leaderboard(raw)
    _save_table(board, out_dir, "leaderboard")
    retrieval = retrieval_table(df)
    _save_table(retrieval, out_dir, "retrieval")
    compute = compute_table(benchmarks)
    _save_table(compute, out_dir, "compute")
    plots = out_dir / "plots"
    _plot_accuracy(raw, chance, plots / "biased_vs_swapped.png")
    _plot_first_screen({**calibration, "primary": primary}, raw, chance, cfg["preset"], plots / "first_screen.png")
    logs = {}
    for log_path in sorted(Path(p) for p in glob.glob(layout.train_log(results_dir(cfg), "*", "*"))):
        logs[f"{log_path.parent.parent.name} s{log_path.parent.name[4:]}"] = json.loads(log_path.read_text())
    has_curves = _plot_training(logs, plots / "training_curves.png")
    mask_quality = mask_quality_section(mask_quality_csv or Path(layout.mask_quality(results_dir(cfg))),
                                        out_dir, ground_truth)

    mirrors = yaml.safe_load((REPO_ROOT / "benchmarks" / "datasets.yaml").read_text(encoding="utf-8"))
    test_sets = [(name, fl, mirrors.get(fl, {}).get("mirrors", "?")) for name, fl in cfg["data"]["test_sets"].items()]
    by_stage = compute.groupby("stage")["wall s"].sum() if len(compute) else pd.Series(dtype=float)
    body = render(
        "index.html.j2", preset=cfg["preset"], generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        ground_truth=ground_truth, real_flavours=real_flavours(cfg), pretrain_flavour=cfg["data"]["pretrain_flavour"],
        downstream_flavour=cfg["data"]["downstream_flavour"], classes=len(classes), chance=f"{100 * chance:.1f}",
        backbone=cfg["backbone"]["name"], epochs=cfg["pretrain"]["epochs"], seeds=cfg["seeds"], test_sets=test_sets,
        runs=cfg["runs"], calibration=calibration_section(calibration), skipped_runs=skipped_section(cfg),
        swapped="swapped" in cfg["data"]["test_sets"], leaderboard=_html_table(board), paper_tables=papers_section,
        datasets=datasets_section(cfg), shortcut_verdicts=_verdicts(raw), accuracy=_html_table(acc),
        retrieval=_html_table(retrieval), has_curves=has_curves, mask_quality=mask_quality,
        stage_seconds=[(stage, f"{secs:.0f}") for stage, secs in by_stage.items()], compute=_html_table(compute))
    write_text(out_dir / "results.md", results_markdown(cfg, calibration, records, board, by_stage))
    page = html_page(f"scenebias — {cfg['preset']}", body)
    write_json(out_dir / "config.json", cfg)  # the resolved config this report was built with
    index = out_dir / "index.html"
    write_text(index, page)
    return index
