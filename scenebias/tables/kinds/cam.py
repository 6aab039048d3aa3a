"""BE Figure 6's kind of table (`protocol: cam`): class-activation maps of MoCo, MoCo+BE and MoCo+FAME, and how
much of their energy falls inside the ground-truth actor (BE §4.7). Its cells are a grid like any table's; only the
render differs: the workflow's CAM figure (rule `cams`) copied beside the table, its scores summarised in the
caption, the claims' details, the Markdown and the record."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from ...analysis.cam import summarise_cams
from ...io import atomic_path
from ...report.plotting import pyplot
from . import Rendered, Rendering, register_table_kind


def cam_figure(cams: tuple[Path, Path] | None, out: Path) -> pd.DataFrame:
    """Copy the CAM figure next to the table and summarise the per-clip scores (empty without CAMs)."""
    if cams is None:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no moco / moco+be / moco+fame runs in this preset: no CAMs", ha="center", fontsize=8)
        with atomic_path(out, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100)
        plt.close(fig)
        return pd.DataFrame()
    scores, figure = cams
    with atomic_path(out, suffix=".png") as tmp:
        shutil.copyfile(figure, tmp)
    return summarise_cams(pd.read_csv(scores))


def cam_detail(summary: pd.DataFrame) -> str:
    if summary.empty:
        return "no CAMs computed"
    parts = [f"{r['model']} on {r['flavour']}: {r['cam_in_actor_mean']:.3f} of the CAM energy in the actor "
             f"(area {r['actor_area']:.3f})" for _, r in summary.iterrows()]
    return "CAM energy share inside the ground-truth actor: " + "; ".join(parts)


def cam_markdown(summary: pd.DataFrame) -> str:
    if summary.empty:
        return ""
    return "\n## Class activation maps: energy inside the actor and FAME's mask\n\n" + \
        summary.round(3).to_markdown(index=False) + "\n"


def render(r: Rendering) -> Rendered:
    """The CAM figure (files["png"]) and its per-model energy shares."""
    summary = cam_figure(r.cams, r.files["png"])
    return Rendered(
        caption=(" Class activation maps (channel-mean energy of the last feature map, BE §4.7) of the preset's "
                 "moco, moco+be and moco+fame runs, first seed; white: ground-truth actor, magenta: FAME mask."),
        claim_detail="; " + cam_detail(summary), markdown=cam_markdown(summary),
        record={"cams": summary.to_dict(orient="records")})


register_table_kind("cam", render=render)
