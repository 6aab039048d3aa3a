"""perf.md: the perf harness's report (`perf.json`, see `harness.py`) as a Markdown table with its settings and
provenance above it."""
from __future__ import annotations

from typing import Any


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"


def _share(entry: dict) -> str:
    if entry["kind"] == "train_step" and "view_builder_share" in entry:
        return f"{100 * entry['view_builder_share']:.2g}%"
    if entry["kind"] == "view_builder" and entry.get("step_share"):
        return ", ".join(f"{b} {100 * s:.2g}%" + (" (vs defaults step)" if entry["step_share_basis"][b] != "same options"
                                                   else "") for b, s in entry["step_share"].items())
    return "—"


def _precision(entry: dict) -> str:
    if entry.get("precision") is None:
        return "—"
    return entry["precision"] + (", channels_last_3d" if entry.get("channels_last") else "")


def _rate(entry: dict) -> str:
    if "throughput_vs_encoder_step" in entry:
        return f"{100 * entry['throughput_vs_encoder_step']:.3g}% of encoder step"
    if entry.get("feeds_step"):
        return "feeds " + ", ".join(f"{b} step ×{r:.3g}" for b, r in entry["feeds_step"].items())
    return "—"


def markdown(report: dict) -> str:
    prov, settings = report["provenance"], report["settings"]
    libs = prov["libraries"]
    lines = [
        f"# scenebias perf: size `{report['size']}`, device `{settings['device']}`", "",
        f"- device: {prov['device']}" + (f"; CPU entries: {prov['cpu']}" if settings["device"] != "cpu" else ""),
        f"- commit `{prov['git_commit']}`, {prov['timestamp']}, host {prov['host']}, "
        f"load average {', '.join(f'{x:.2f}' for x in prov['load_average'])} at start",
        f"- torch {libs.get('torch')}, torchvision {libs.get('torchvision')}, python {libs.get('python')}"
        + (f", CUDA {prov['cuda']}, cuDNN {prov['cudnn']}" if prov.get("cuda") else "")
        + f", {prov['torch_threads']} torch threads",
        f"- batch {settings['batch']} × 3 × {settings['clip_len']} × {settings['crop']}²; backbones "
        f"{', '.join(settings['backbones'])}; steps in {settings['precision']}"
        f"{', channels_last_3d' if settings['channels_last'] else ', contiguous'} (--precision "
        f"{settings['precision_setting']}, --channels-last {settings['channels_last_setting']}); augmentation and "
        "view builders in fp32 outside autocast, as the loops run them; training steps for "
        + ("each method's defaults" if settings["steps"] == "defaults" else "every case"),
        f"- timing: median of {settings['iters']} runs after {settings['warmup']} warm-up runs"
        + (f" (CPU entries: {settings['cpu_iters']} after {settings['cpu_warmup']})"
           if settings.get("cpu_iters") is not None else "")
        + "; clips/s = batch / median (loader: videos per second of a full pass)",
        f"- peak memory: {report['peak_memory_kind']}",
        f"- loader set: {report['dataset'].get('videos', '—')} generated videos, manifest "
        f"`{report['dataset'].get('manifest_hash', '—')}`"
        + (f", on-disk frame cache {report['dataset']['frame_cache']['bytes'] / 2 ** 20:.1f} MB"
           if report["dataset"].get("frame_cache") else "") + f"; {settings['workers']} workers",
        "- targets: " + "; ".join(f"{t['text']} ({', '.join(f'{k}: {v}' for k, v in t['entries'].items()) or 'no entry'})"
                                  for t in report["targets"].values()),
        "",
        "| kind | name | backbone | device | precision | ms/batch | clips/s | view share of step | rate vs reference "
        "| peak MB | targets |",
        "| --- | --- | --- | --- | --- | ---: | ---: | --- | --- | ---: | --- |",
    ]
    for e in report["entries"]:
        targets = "; ".join(f"{t['id']}: {t['status']}" for t in e["targets"]) or "—"
        lines.append("| " + " | ".join(_cell(c) for c in (
            e["kind"], e["name"], e["backbone"] or "—", e["device"], _precision(e), _num(e["ms_per_batch"]),
            _num(e["clips_per_s"]), _share(e), _rate(e), f"{e['peak_memory_mb']:.0f}", targets)) + " |")
    if report["skipped"]:
        lines += ["", "Not measured: " + "; ".join(f"{s['name']} ({s['why']})" for s in report["skipped"])]
    if report["failed"]:
        lines += ["", "Failed:", ""] + [f"- `{f['what']}`: {f['error']} (raised at {f['raised_at']})"
                                         for f in report["failed"]]
    return "\n".join(lines) + "\n"


def _size(n: float) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1 (KiB, MiB, GiB, TiB)."""
    for unit, power in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 2 ** power:
            return f"{n / 2 ** power:.3g} {unit}"
    return f"{n:.0f} B"


def _mmap_ms(timing: dict | None) -> str:
    return f"{timing['ms_per_batch']:.2f}" if timing else "—"


def cache_markdown(report: dict) -> str:
    """cache.md: the frame-cache benchmark (`cache.py`): stores, loader memory, the real datasets' arithmetic."""
    s, prov, src = report["settings"], report["provenance"], report["source"]
    h, w = s["source_size"]
    lines = [
        "# scenebias perf: frame cache at real-data size", "",
        f"- `{prov['command']}`; commit `{prov['git_commit']}`, {prov['timestamp']}, {prov['cpu']}, load average "
        f"{', '.join(f'{x:.2f}' for x in prov['load_average'])} at start",
        f"- {src['videos']} synthetic {w}×{h} H.264 videos (x264 CRF {s['crf']}), {s['frames_per_video']} frames "
        f"({s['seconds']:g} s at {s['fps']} fps): {_size(src['bytes_per_video'])} per file, "
        f"{src['kbit_per_s']:.0f} kbit/s",
        f"- read = median ms to get one clip ({s['clip']['clip_len']} frames, stride {s['clip']['stride']}) of a "
        f"video as a uint8 tensor, the entry's first-read sha256 check included once per process; decoding the "
        f"H.264 file: {report['decoding']['ms_per_batch']:.1f} ms", "",
        "| store | frame size | per video | per frame | bytes/px | build s/video | read ms/clip | read ms/clip (mmap) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in report["stores"]:
        lines.append(f"| {e['name']} | {e['frame_size'][1]}×{e['frame_size'][0]} | {_size(e['bytes_per_video'])} | "
                     f"{_size(e['bytes_per_frame'])} | {e['bytes_per_pixel']:.3g} | {e['build_s_per_video']:.2f} | "
                     f"{e['read_clip']['ms_per_batch']:.2f} | {_mmap_ms(e.get('read_clip_mmap'))} |")
    first = report["loaders"][0]
    lines += [
        "", f"Loader peak RSS: ClipDataset pair items ({s['clip']['clip_len']} × {s['clip']['crop_size']}²) over the "
        f"{first['videos']} videos, {first['epochs']} epoch(s), batch {first['batch']}, {first['workers']} workers, "
        "a DataLoader per epoch (as the training loop); each case in a fresh process", "",
        "| case | worker peak RSS | above the reference | main peak RSS | items/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    key = "worker_rss_mb" if first["workers"] else "main_rss_mb"  # with no workers the main process loads
    for e in report["loaders"]:
        worker = f"{e['worker_rss_mb']:.0f} MB" if e["worker_rss_mb"] is not None else "—"
        lines.append(f"| {e['name']} | {worker} | {e[key] - first[key]:+.0f} MB | {e['main_rss_mb']:.0f} MB | "
                     f"{e['items_per_s']:.2f} |")
    lines += [
        "", "Real datasets (cache size from the measured bytes per pixel; `before: RAM per worker` is what the "
        "unbounded in-memory cache held at that frame size after one epoch, with "
        f"{report['datasets'][0]['workers']} workers; now each holds at most data.memory_cache_mb):", "",
        "| dataset | videos | frames/video | cached frames | .npy per video | .npy total | JPEG per video | JPEG total "
        "| before: RAM per worker |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for d in report["datasets"]:
        hh, ww = d["cached_size"]
        setting = d["short_side"] if d["short_side"] == "as decoded" else f"short side {d['short_side']}"
        lines.append(f"| {d['dataset']} | {d['videos']:,} | {d['frames_per_video']:.0f} | {ww}×{hh} ({setting}) | "
                     f"{_size(d['npy_bytes_per_video'])} | {_size(d['npy_total_bytes'])} | "
                     f"{_size(d['jpeg_bytes_per_video'])} | {_size(d['jpeg_total_bytes'])} | "
                     f"{_size(d['before_worker_ram_bytes'])} |")
    lines += ["", "Dataset figures: " + "; ".join(f"{d['dataset']}: {d['source']}"
                                                 for d in {d["dataset"]: d for d in report["datasets"]}.values())]
    return "\n".join(lines) + "\n"
