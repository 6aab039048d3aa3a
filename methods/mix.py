"""Video Mixup and Video CutMix as positive-pair construction (BE §4.4, Table 4 rows "Video Mixup" and
"Video CutMix"; Zhang et al. ICLR 2018, Yun et al. ICCV 2019).

BE Table 4 replaces its static-frame distractor by four other operations on the query view; two of them mix in
another *video* rather than a static image, so the temporal difference of the result is no longer
(1 − λ)·dx/dt: both destroy the motion pattern and the paper finds them below the MoCo baseline
(UCF101 68.3 / 71.2 vs 72.7 for MoCo; HMDB51 38.1 / 40.5 vs 42.1). They are `moco+be` with the distractor
pinned, so they share its λ ~ U(0, γ) and every other option, and have their own rows in every table.
"""
from __future__ import annotations

from scenebias.plugins import register_preset

# moco+be (methods/be.py) is registered by its own file; a preset waits for its base (scenebias.plugins).

register_preset("moco+mixup", "moco+be", fixed={"distractor": "mixup"}, paper="BE §4.4 Table 4 (Video Mixup)",
                description="MoCo with another video mixed into the query view frame by frame (λ ~ U(0, γ))")
register_preset("moco+cutmix", "moco+be", fixed={"distractor": "cutmix"}, paper="BE §4.4 Table 4 (Video CutMix)",
                description="MoCo with a box of another video pasted into every frame of the query view")
