"""Performance harness: ms per batch of every view builder and the base augmentation, clips/s of a full
pretraining step per method and backbone, data-loader clips/s (video files vs. the decoded-frame cache) and
peak memory, written as `perf.json` + `perf.md` with provenance and the speed targets beside each number.

Run it with `python -m benchmarks.perf.harness --size tiny|small|paper --device cpu|cuda|auto --out DIR`
(see `benchmarks/perf/README.md`).
"""
