"""The generated scene-biased video set.

An actor (random shape, colour, texture and size, drawn independently of the class) moves along a class
trajectory over a procedural background ("scene"). Classes are motions, not looks. With probability rho_c a
video of class c is shown on its class's own scene family, otherwise on a uniformly random other family, so
a model can reach high accuracy from the scene alone: the shortcut self-supervised video models learn.

Flavours (each a folder under the output dir, in the official layout that `formats.read_split` reads):

  ucf101           biased (rho), UCF101 layout, ucfTrainTestlist/{classInd,trainlist01,testlist01}.txt
  ucf101_unbiased  same classes and sizes, scene drawn uniformly from the K families (calibration row)
  ucf101_swapped   every ucf101 TEST video with the same actor layer, mask and trajectory pasted onto a
                   scene family that is neither its class's own nor its original one (seeded);
                   same file names, classInd + testlist01 (trainlist01 empty)
  ucf101_static    the static counterpart of each swapped video: its middle frame repeated T times
  hmdb51           other (disjoint) motion classes on their own scene families, biased with hmdb_rho
                   (default: rho); HMDB51 layout, <class>_test_split1.txt with tags 1 = train, 2 = test, 0 = unused
  actor_hmdb51     the hmdb51 videos cropped to the actor frame by frame: one square per video (every frame's
                   actor box about the crop's track, plus actor_crop_margin of the largest box side on each
                   side), centred on the actor's track (actor_crop_smoothing), clamped, resized back; same split
                   files (mirrors Actor-HMDB51)
  hmdb51_unbiased  same classes, file names and split tags as hmdb51, its own videos, scene family drawn
                   uniformly from the K families
  hmdb51_swapped   every hmdb51 TEST video re-rendered on a scene family that is neither its class's own nor
                   its original one (its own swap seeds); split files list only these, as test (tag 2)
  hmdb51_static    the static counterpart of each hmdb51_swapped video: its middle frame repeated T times
  actor_hmdb51_unbiased / actor_hmdb51_swapped
                   the actor crop (as actor_hmdb51) of the hmdb51_unbiased / hmdb51_swapped videos
  diving48         two-stage motions (stage 1 then stage 2, switch near the middle), unbiased scenes,
                   diving_num_frames frames (default: num_frames);
                   Diving48 V2 layout: rgb/<vid>.mp4, Diving48_V2_{train,test}.json, Diving48_vocab.json

Ground truth per video: `<flavour>/annotations/<video path relative to the flavour root>.npz` with the
actor masks (bit-packed), boxes (x0, y0, x1, y1; x1/y1 exclusive; all zero for an empty mask), label,
scene_family and own_scene; swapped and static copies add original_scene_family (static: source_frame), actor
crops crop_box: the (T, 4) int32 per-frame squares, in the uncropped frame, that each frame was cut to.
`load_annotation` unpacks one. `<flavour>/annotations/index.json` lists every video of the flavour with its
label, class, subset, scene family and own_scene flag (swapped and static copies: original_scene_family).

Everything is a pure function of the config: per-video randomness comes from
`np.random.SeedSequence([seed, crc32(namespace), video index, crc32(purpose)])`, so output does not depend
on the number of workers or the order they run in; video files and the .npz sidecars are byte-deterministic,
and `manifest.json` holds the sha256 of every file and a hash over them.

Modules: `flavours` (flavour names, layouts, class naming), `motions` (class trajectories), `config`
(GeneratorConfig), `seeding`, `plans` (which videos each flavour holds), `scenes` (background families),
`rendering` (actor, compositing, post steps, boxes), `annotations` (.npz sidecars), `generation`
(generate, split files, manifest). Their names are all re-exported here: import from this package.
"""
from __future__ import annotations

from .annotations import load_annotation, save_annotation
from .config import GeneratorConfig
from .flavours import FLAVOUR_FORMAT, FLAVOURS, ucf_class_name
from .generation import GENERATOR_VERSION, flavour_roots, generate
from .motions import MOTIONS, Motion
from .plans import VideoPlan, class_rhos, draw_scene_family, make_plans
from .rendering import (ACTOR_TEXTURES, SHAPES, Rendered, actor_crop_boxes, boxes_from_masks, render,
                        render_final)
from .scenes import SCENE_TYPES, SceneFamily, scene_family

__all__ = [
    "ACTOR_TEXTURES", "FLAVOURS", "FLAVOUR_FORMAT", "GENERATOR_VERSION", "GeneratorConfig", "MOTIONS", "Motion",
    "Rendered", "SCENE_TYPES", "SHAPES", "SceneFamily", "VideoPlan", "actor_crop_boxes", "boxes_from_masks",
    "class_rhos", "draw_scene_family", "flavour_roots", "generate", "load_annotation", "make_plans",
    "render", "render_final", "save_annotation", "scene_family", "ucf_class_name",
]
