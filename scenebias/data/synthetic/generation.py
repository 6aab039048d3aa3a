"""Generating a dataset: rendering every plan (optionally in worker processes), split files, index and
the manifest, written atomically."""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
from pathlib import Path

from tqdm import tqdm

from ...io import write_json
from ...provenance import canonical_sha256
from .. import formats
from ..manifest import file_sha256
from ..video import write_video
from .annotations import save_annotation
from .config import GeneratorConfig
from .flavours import FLAVOUR_FORMAT, FLAVOURS
from .plans import VideoPlan, make_plans
from .rendering import render_final

GENERATOR_VERSION = "scenebias.synthetic/2.0"


def flavour_roots(out_dir: str | os.PathLike) -> dict[str, Path]:
    """{flavour: its root folder} for the flavours present under out_dir, in FLAVOURS order."""
    base = Path(out_dir)
    return {f: base / f for f in FLAVOURS if (base / f).is_dir()}


def _render_task(args: tuple[dict, VideoPlan, str]) -> dict:
    cfg_d, plan, root = args
    cfg = GeneratorConfig(**cfg_d)
    frames, masks, extra = render_final(cfg, plan)
    froot = Path(root) / plan.flavour
    write_video(froot / plan.rel, frames, fps=cfg.fps)
    save_annotation(froot / plan.annotation_rel, masks, plan.label, plan.scene_family, plan.own_scene, **extra)
    return {"flavour": plan.flavour, "video": plan.rel}


def _write_splits(cfg: GeneratorConfig, froot: Path, flavour: str, plans: list[VideoPlan]) -> None:
    fmt = FLAVOUR_FORMAT[flavour]
    if fmt == "ucf101":
        lst = froot / "ucfTrainTestlist"
        formats.write_ucf101_classind(lst / "classInd.txt", cfg.ucf_names())
        key = lambda p: (p.label, p.rel)  # noqa: E731
        train = sorted((p for p in plans if p.subset == "train"), key=key)
        test = sorted((p for p in plans if p.subset == "test"), key=key)
        formats.write_ucf101_trainlist(lst / "trainlist01.txt",
                                       [(p.rel.removeprefix("UCF101/"), p.label) for p in train])
        formats.write_ucf101_testlist(lst / "testlist01.txt", [p.rel.removeprefix("UCF101/") for p in test])
    elif fmt == "hmdb51":
        tag = {"train": 1, "test": 2, "unused": 0}
        per_class: dict[str, list[tuple[str, int]]] = {n: [] for n in cfg.hmdb_names()}
        for p in plans:
            per_class[p.class_name].append((Path(p.rel).name, tag[p.subset]))
        formats.write_hmdb51_splits(froot / "testTrainMulti_7030_splits", per_class, split=1)
    else:
        for subset in ("train", "test"):
            entries = sorted(({"vid_name": Path(p.rel).stem, "label": p.label, "start_frame": 0,
                               "end_frame": p.num_frames - 1} for p in plans if p.subset == subset),
                             key=lambda e: (e["label"], e["vid_name"]))
            formats.write_diving48_entries(froot / formats.DIVING48_FILES[subset], entries)
        formats.write_diving48_vocab(froot / formats.DIVING48_VOCAB, cfg.diving_vocab())
    index = [{"video": p.rel, "annotation": p.annotation_rel, "label": p.label, "class_name": p.class_name,
              "subset": p.subset, "stages": list(p.stages), "scene_family": p.scene_family,
              "own_scene": p.own_scene, **({"original_scene_family": p.original_family}
                                            if p.post in ("swap", "static") else {})}
             for p in sorted(plans, key=lambda p: p.rel)]
    write_json(froot / "annotations" / "index.json", index)


def generate(cfg: GeneratorConfig, out_dir: str | os.PathLike, workers: int = 2, progress: bool = True) -> dict:
    """Generate every configured flavour into out_dir (replacing it) and return the manifest.

    Work happens in a temporary sibling folder that is renamed onto out_dir only when complete, so a
    killed run never leaves a half-written dataset. Videos are rendered in `workers` processes (fork on
    POSIX; workers=1 renders in this process); the result does not depend on the worker count.
    """
    cfg.validate()
    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        plans = make_plans(cfg)
        cfg_d = cfg.to_dict()
        tasks = [(cfg_d, p, str(tmp)) for ps in plans.values() for p in ps]
        with tqdm(total=len(tasks), desc="generate", unit="video", leave=False, disable=not progress) as bar:
            if workers <= 1:
                for task in tasks:
                    _render_task(task)
                    bar.update()
            else:
                ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
                with ctx.Pool(processes=int(workers)) as pool:
                    for _ in pool.imap_unordered(_render_task, tasks, chunksize=8):
                        bar.update()
        for flavour, ps in plans.items():
            _write_splits(cfg, tmp / flavour, flavour, ps)
            # self-check: the files we wrote read back through the same readers real data uses
            for subset in ("train", "test"):
                formats.read_split(FLAVOUR_FORMAT[flavour], tmp / flavour, subset, check_files=True)
        files = []
        for p in sorted(tmp.rglob("*")):
            if p.is_file() and p.name != "manifest.json":
                files.append({"path": p.relative_to(tmp).as_posix(), "bytes": p.stat().st_size,
                              "sha256": file_sha256(p)})
        files.sort(key=lambda e: e["path"])
        manifest = {"generator": GENERATOR_VERSION, "config": cfg_d, "files": files,
                    "hash": canonical_sha256(files)}
        write_json(tmp / "manifest.json", manifest)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
