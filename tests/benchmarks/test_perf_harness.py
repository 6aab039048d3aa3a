"""The perf harness (benchmarks/perf): `python -m benchmarks.perf.harness --size tiny --device cpu` writes
perf.json and perf.md with an entry per registered training method, its variants' view builders, the base
augmentation and its parts, MoCo's encoders alone, the backbone and the data loader (video files, in-memory
cache, on-disk frame cache); every entry's precision and layout; positive finite timings; one Markdown row per
entry; the targets recorded as not applicable on a CPU; provenance. Forced bf16 + channels_last runs on a CPU.
The target logic is checked on made-up entries."""
import json
import math
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import torch

from scenebias.models.backbones import build_backbone
from scenebias.plugins import load_methods

REPO = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, "-m", "benchmarks.perf.harness"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf")
    proc = subprocess.run([*HARNESS, "--size", "tiny", "--device", "cpu", "--threads", "1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "perf.json").read_text()), (out / "perf.md").read_text()


def _training_methods():
    registry = load_methods()
    modes = {name: registry.get(name).build(build_backbone("tiny3d", width=4), 3).dataset_mode for name in registry}
    return sorted(n for n, m in modes.items() if m != "none"), sorted(n for n, m in modes.items() if m == "none")


def test_both_files_are_written_atomically(tiny_run):
    out, report, _ = tiny_run
    assert sorted(p.name for p in out.iterdir()) == ["perf.json", "perf.md"]  # no temporary files left
    assert report["format"] == "scenebias-perf/1" and report["size"] == "tiny" and report["failed"] == []


def test_every_training_method_every_variant_and_the_base_augmentation_have_entries(tiny_run):
    _, report, _ = tiny_run
    entries = report["entries"]
    by_kind = {}
    for e in entries:
        by_kind.setdefault(e["kind"], set()).add(e["name"])
    training, untrained = _training_methods()
    assert training and untrained == ["random_init"]
    for name in training:
        assert name in by_kind["view_builder"], name
        assert name in by_kind["train_step"], name
    for name in untrained:
        assert not any(e.get("method") == name for e in entries)
        assert name in {s["name"] for s in report["skipped"]}
    registry = load_methods()
    for name in training:  # every declared variant value has its view builder timed
        spec = registry.get(name)
        for option, values in spec.variants.items():
            for value in values:
                if value != spec.defaults[option]:
                    assert f"{name}[{option}={value}]" in by_kind["view_builder"]
    assert "moco+fame[mask=gauss]" in by_kind["view_builder"] and "rotnet[be_consistency=True]" in by_kind["view_builder"]
    assert by_kind["augmentation"] == {"base augmentation", "colour jitter (every clip)", "grayscale (every clip)",
                                       "gaussian blur (every clip)", "normalize"}
    assert by_kind["backbone_step"] == {"backbone forward+backward"}
    assert by_kind["encoder_step"] == {"MoCo encoders (views given, no augmentation)"}
    loaders = [e for e in entries if e["kind"] == "loader"]
    assert {e["cache"] for e in loaders} == {False, True}
    assert sorted(e["source"] for e in loaders) == ["in-memory decoded cache", "on-disk frame cache",
                                                    "on-disk frame cache (memory-mapped)", "video files"]
    assert [e["mmap"] for e in loaders if e["frame_cache"]] == [False, True]
    assert all(not e["cache"] for e in loaders if e["frame_cache"])  # the disk is read every pass
    assert report["dataset"]["frame_cache"]["entries"] == report["dataset"]["videos"]
    assert len({e["id"] for e in entries}) == len(entries)


def test_every_entry_records_its_precision_and_layout(tiny_run):
    _, report, md = tiny_run
    settings = report["settings"]
    assert (settings["precision_setting"], settings["channels_last_setting"]) == ("auto", "auto")
    assert (settings["precision"], settings["channels_last"]) == ("fp32", False)  # "auto" on a CPU
    for e in report["entries"]:
        assert "precision" in e and "channels_last" in e, e["id"]
        if e["kind"] == "loader":
            assert e["precision"] is None and e["channels_last"] is False
        else:
            assert e["precision"] == "fp32" and e["channels_last"] is False, e["id"]
    assert "steps in fp32, contiguous (--precision auto, --channels-last auto)" in md


def test_moco_steps_are_compared_with_the_encoders_and_the_loader_with_the_fame_step(tiny_run):
    _, report, md = tiny_run
    entries = report["entries"]
    encoder = next(e for e in entries if e["kind"] == "encoder_step")
    steps = {e["name"]: e for e in entries if e["kind"] == "train_step"}
    for name in ("moco", "moco+fame", "moco+be", "dsm", "moco+mixup", "moco+cutmix"):
        assert steps[name]["moco_family"]
        assert steps[name]["throughput_vs_encoder_step"] == pytest.approx(
            encoder["ms_per_batch"] / steps[name]["ms_per_batch"])
    for name in ("supervised", "rotnet", "clip_order", "cubic_puzzle"):  # no MoCo encoders to compare with
        assert not steps[name]["moco_family"] and "throughput_vs_encoder_step" not in steps[name]
    fame = steps["moco+fame"]
    for loader in (e for e in entries if e["kind"] == "loader"):
        assert loader["feeds_step"] == {"tiny3d": pytest.approx(loader["clips_per_s"] / fame["clips_per_s"])}
        assert loader["fed_device_name"] == fame["device_name"]
    assert "% of encoder step" in md and "feeds tiny3d step ×" in md


def test_every_timing_is_a_positive_finite_number_and_rates_follow_from_them(tiny_run):
    _, report, _ = tiny_run
    for e in report["entries"]:
        values = [e["ms_per_batch"], e["min_ms"], e["clips_per_s"], e["peak_memory_mb"], *e["samples_ms"]]
        assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in values), e["id"]
        assert len(e["samples_ms"]) == e["iters"] and e["min_ms"] <= e["ms_per_batch"] * (1 + 1e-9)
        if e["kind"] == "loader":
            assert e["clips_per_s"] == pytest.approx(e["videos"] / (e["ms_per_pass"] / 1e3))
        else:
            assert e["clips_per_s"] == pytest.approx(report["settings"]["batch"] / (e["ms_per_batch"] / 1e3))
        if e["kind"] == "train_step":
            view = next(v for v in report["entries"] if v["kind"] == "view_builder" and v["name"] == e["name"])
            assert e["view_builder_share"] == pytest.approx(view["ms_per_batch"] / e["ms_per_batch"])
            assert e["loss_finite"]
        if e["kind"] == "view_builder":
            assert set(e["step_share"]) == {"tiny3d"}
            basis = "same options" if e["name"] == e["method"] else "method defaults"
            assert e["step_share_basis"] == {"tiny3d": basis}


def test_the_markdown_table_has_one_row_per_entry_in_order(tiny_run):
    _, report, md = tiny_run
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert rows[0].startswith("| kind | name |") and set(rows[1]) <= set("|-: ")
    body = rows[2:]
    assert len(body) == len(report["entries"])
    for row, e in zip(body, report["entries"]):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0] == e["kind"] and cells[1] == e["name"] and cells[3] == e["device"]
        assert cells[4] == ("—" if e["kind"] == "loader" else "fp32")


def test_targets_are_recorded_as_not_applicable_on_a_cpu(tiny_run):
    _, report, md = tiny_run
    records = [(e, t) for e in report["entries"] for t in e["targets"]]
    assert records
    assert all(t["status"].startswith("not applicable (device cpu") for _, t in records)
    fame = {e["name"] for e, t in records if t["id"] == "fame_ms"}
    assert "moco+fame" in fame and "moco+fame[mask=gauss]" not in fame and "moco+fame[branches=both]" not in fame
    views = [e for e in report["entries"] if e["kind"] == "view_builder"]
    assert all(any(t["id"] == "view_share" for t in e["targets"]) for e in views)
    assert report["targets"]["view_share"]["entries"] == {"not applicable": len(views)}
    assert "2 ms per batch of 64 × 3 × 16 × 112² on an H100" in report["targets"]["fame_ms"]["text"]
    assert "fame_ms: not applicable (device cpu" in md
    disk = [e for e in report["entries"] if e["kind"] == "loader" and e["frame_cache"]]
    assert all([t["id"] for t in e["targets"]] == ["loader_keeps_up"] for e in disk)
    assert report["targets"]["step_throughput"]["entries"] == {}  # stated for R(2+1)D-18: none at size tiny


def test_provenance_records_device_versions_commit_size_and_time(tiny_run):
    _, report, md = tiny_run
    prov = report["provenance"]
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", prov["git_commit"])
    assert torch.__version__.startswith(prov["libraries"]["torch"])
    assert prov["libraries"]["torchvision"] not in ("", "absent")
    assert prov["device"].startswith("cpu (") and prov["size"] == "tiny" and prov["torch_threads"] == 1
    assert datetime.fromisoformat(prov["timestamp"]).tzinfo is not None
    assert re.fullmatch(r"[0-9a-f]{64}", prov["dataset_manifest_hash"])
    assert prov["git_commit"] in md and prov["libraries"]["torch"] in md


def test_targets_pass_or_fail_only_on_their_device_and_size(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.perf.targets import judge_all

    def fame(ms, device_name="NVIDIA H100 80GB HBM3", mask="fame"):
        return {"kind": "view_builder", "method": "moco+fame", "device": "cuda", "device_name": device_name,
                "resolved_options": {"mask": mask, "branches": "single"}, "ms_per_batch": ms,
                "step_share": {"r2plus1d_18": 0.01, "r3d_18": ms / 40}}

    fast, slow, h200, gauss = fame(1.5), fame(2.5), fame(1.0, "NVIDIA H200"), fame(9.0, mask="gauss")
    summary = judge_all([fast, slow, h200, gauss], "paper")
    status = lambda e, tid: next(t["status"] for t in e["targets"] if t["id"] == tid)  # noqa: E731
    assert status(fast, "fame_ms") == "pass" and status(slow, "fame_ms") == "fail"
    assert status(h200, "fame_ms").startswith("not applicable (device cuda: NVIDIA H200")
    assert not any(t["id"] == "fame_ms" for t in gauss["targets"])
    # the largest share over backbones is judged: 1.5/40 < 5% passes, 2.5/40 > 5% fails
    assert status(fast, "view_share") == "pass" and status(slow, "view_share") == "fail"
    assert summary["fame_ms"]["entries"] == {"pass": 1, "fail": 1, "not applicable": 1}
    small = fame(1.5)
    judge_all([small], "small")
    assert status(small, "fame_ms").startswith("not applicable (size small")


def test_step_throughput_and_loader_targets_are_floors_judged_on_the_gpu_they_concern(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.perf.targets import judge_all

    h100 = "NVIDIA H100 80GB HBM3"

    def step(ratio, backbone="r2plus1d_18", name="moco+fame"):
        return {"kind": "train_step", "name": name, "backbone": backbone, "device": "cuda", "device_name": h100,
                "throughput_vs_encoder_step": ratio}

    def loader(feeds, fed=h100, frame_cache=True):
        return {"kind": "loader", "device": "cpu", "device_name": "cpu (x86_64, 16 cores)", "frame_cache": frame_cache,
                "feeds_step": feeds, "fed_device_name": fed}

    entries = [step(0.95), step(0.85), step(0.5, backbone="r3d_18"), step(0.5, name="moco"),
               loader({"r2plus1d_18": 1.3, "r3d_18": 0.8}), loader({"r2plus1d_18": 0.7}),
               loader({"r2plus1d_18": 2.0}, fed="cpu (x86_64, 16 cores)"), loader({"r2plus1d_18": 0.1}, frame_cache=False)]
    summary = judge_all(entries, "paper")
    status = [next((t["status"] for t in e["targets"] if t["id"] in ("step_throughput", "loader_keeps_up")), None)
              for e in entries]
    assert status[:2] == ["pass", "fail"] and status[2] is None and status[3] is None  # R(2+1)D-18 MoCo+FAME only
    assert status[4:6] == ["pass", "fail"]  # the R(2+1)D-18 step's feed is judged (r3d_18's is not)
    assert status[6].startswith("not applicable (device cpu") and status[7] is None  # files: not a cache entry
    assert summary["step_throughput"]["at_least"] and summary["step_throughput"]["entries"] == {"pass": 1, "fail": 1}


def test_forced_bf16_and_channels_last_run_on_a_cpu(tmp_path):
    proc = subprocess.run([*HARNESS, "--size", "tiny", "--device", "cpu", "--threads", "1", "--precision", "bf16",
                           "--channels-last", "--only", "train_step/moco+fame", "--only", "encoder_step/*",
                           "--only", "augmentation/base*", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "perf.json").read_text())
    kinds = {e["kind"]: e for e in report["entries"]}
    assert set(kinds) == {"augmentation", "train_step", "encoder_step"}
    assert (report["settings"]["precision"], report["settings"]["channels_last"]) == ("bf16", True)
    for kind in ("train_step", "encoder_step"):
        assert (kinds[kind]["precision"], kinds[kind]["channels_last"]) == ("bf16", True)
    assert kinds["train_step"]["loss_finite"] and kinds["train_step"]["throughput_vs_encoder_step"] > 0
    assert (kinds["augmentation"]["precision"], kinds["augmentation"]["channels_last"]) == ("fp32", True)
    assert "bf16, channels_last_3d" in (tmp_path / "perf.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_a_gpu_is_an_error_naming_the_option(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.perf.harness import main

    assert main(["--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "perf.json").exists()
