"""MoCo baseline (He et al., CVPR 2020), as the base of FAME (Ding et al., CVPR 2022, §3.1, eq. 1) and
BE (Wang et al., CVPR 2021, §3.2, eq. 5).

Rows: FAME Tables 1–3 "MoCo" / "Baseline"; BE Tables 3–4 "MoCo (baseline)".
Defaults are the FAME code's (τ = 0.1, 128-d, m = 0.999); the queue is sized per preset because it must
stay well below the number of pretraining videos (see `queue_same_video` in the training log).
The objective, `MocoObjective`, and its options live in scenebias/train/moco.py, where the MoCo-based methods
(moco+be and its presets, moco+fame, dsm; `parent="moco"`) extend it.
"""
from __future__ import annotations

from scenebias.plugins import register_method
from scenebias.train.moco import MOCO_DEFAULTS, MOCO_VARIANTS, MocoObjective

register_method("moco", paper="FAME §3.1 eq. 1; BE §3.2 eq. 5", defaults=MOCO_DEFAULTS,
                variants=MOCO_VARIANTS)(MocoObjective)
