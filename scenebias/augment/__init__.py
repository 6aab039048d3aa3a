"""View-building blocks that methods compose (docs/methods.md): the library half of FAME, BE and their variants.

- `foreground`: FAME's separation (seed map, colour statistics in both colour modes, the Table 6 masks) and merge
  (Ding et al., CVPR 2022, §3.2–3.3, eqs. 2–6), and the oracle's actor-free scene;
- `distractors`: BE's static-frame distractor and the Table 4 alternatives (Wang et al., CVPR 2021, §3.2, §4.4);
- `pairing`: which other clip of the batch a clip is mixed with (`derangement`).

Method files (methods/) import these; nothing here imports a method.
"""
