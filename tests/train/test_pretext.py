"""Pretext-task methods of BE Table 1 (3D RotNet, Clip Order, ST Puzzles), with and without BE's consistency
term: each transform stated exactly, ψ and L_be hand-computed, and one training step per method."""
import itertools
import math

import pytest
import torch

import scenebias_methods.clip_order as clip_order
import scenebias_methods.cubic_puzzle as cubic_puzzle
import scenebias_methods.rotnet as rotnet
from scenebias.augment import distractors
from scenebias.data.transforms import colour_augment, normalize
from scenebias.models.backbones import build_backbone
from scenebias.plugins import load_methods
from scenebias.train import pretext


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _build(name, **options):
    return load_methods().get(name).build(build_backbone("tiny3d", width=4), 3, options)


def _batch(objective, seed=0, b=4):
    t = 8 * objective.clip_len_factor  # clip_order: 3 sub-clips of clip_len = 8 frames
    return {"clip": torch.rand(b, 3, t, 16, 16, generator=_gen(seed)), "label": torch.tensor([0, 1, 2, 0][:b]),
            "index": torch.arange(b)}


def _identity(x):
    return x


TASKS = [("rotnet", {}), ("rotnet", {"rotations": "random"}), ("clip_order", {}), ("cubic_puzzle", {}),
         ("cubic_puzzle", {"axis": "temporal"})]
RANDOM_TASKS = TASKS[1:]  # one drawn transform per clip


def test_registered_with_be_defaults_and_single_clips():
    methods = load_methods()
    for name in ("rotnet", "clip_order", "cubic_puzzle"):
        spec = methods.get(name)
        assert spec.defaults["be_consistency"] is False
        assert spec.defaults["be_weight"] == 1.0 and spec.defaults["gamma"] == 0.3
        assert spec.objective.dataset_mode == "single"
        assert "BE" in spec.paper and "Table 1" in spec.paper
    assert methods.get("clip_order").objective.clip_len_factor == 3
    assert methods.get("rotnet").objective.clip_len_factor == 1
    assert methods.get("cubic_puzzle").objective.clip_len_factor == 1


# -------------------------------------------------------------------------------------------------- RotNet
def test_rotation_by_k_quarter_turns_is_torch_rot90_on_every_frame():
    clips = torch.rand(4, 3, 5, 6, 6, generator=_gen(1))
    out = rotnet.rotate(clips, torch.arange(4)[:, None])[:, 0]
    for k in range(4):
        for t in range(5):
            assert torch.equal(out[k, :, t], torch.rot90(clips[k, :, t], k, dims=(1, 2)))
    frame = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(1, 1, 1, 2, 2)
    assert torch.equal(rotnet.rotate(frame, torch.tensor([[1]]))[0, 0, 0, 0], torch.tensor([[2.0, 4.0], [1.0, 3.0]]))


def test_four_quarter_turns_return_the_clip_and_k_then_4_minus_k_is_identity():
    clips = torch.rand(4, 3, 4, 8, 8, generator=_gen(2))
    x = clips
    for turns in range(1, 5):
        x = rotnet.rotate(x, torch.ones(4, 1, dtype=torch.long))[:, 0]
        assert torch.equal(x, clips) == (turns == 4)
    k = torch.arange(4)[:, None]
    assert torch.equal(rotnet.rotate(rotnet.rotate(clips, k)[:, 0], (4 - k) % 4)[:, 0], clips)


def test_rotation_rejects_non_square_frames():
    with pytest.raises(ValueError, match="square"):
        rotnet.rotate(torch.rand(1, 3, 2, 8, 6), torch.zeros(1, 1, dtype=torch.long))


def test_rotnet_all_feeds_each_clip_in_all_four_rotations_random_draws_one():
    objective = _build("rotnet")
    assert torch.equal(objective.draw_labels(3, _gen()), torch.arange(4).repeat(3, 1))
    batch = _batch(objective)
    views = objective.make_views(batch, _gen())
    assert len(views) == 4
    for k, view in enumerate(views):
        assert torch.equal(view, torch.rot90(batch["clip"], k, dims=(3, 4)))
    one = _build("rotnet", rotations="random")
    labels = torch.cat([one.draw_labels(8, _gen(s)) for s in range(10)])
    assert labels.shape == (80, 1) and set(labels.flatten().tolist()) == {0, 1, 2, 3}


# ---------------------------------------------------------------------------------------------- Clip order
def test_permutation_tables_are_all_of_s3_and_s4():
    for n in (3, 4):
        table = pretext.permutation_table(n)
        assert [tuple(row) for row in table.tolist()] == list(itertools.permutations(range(n)))
        assert len(table) == math.factorial(n)


def test_clip_order_shuffles_consecutive_subclips_exactly_and_the_label_undoes_it():
    objective = _build("clip_order")
    clips = torch.rand(2, 3, 9, 8, 8, generator=_gen(3))  # 3 sub-clips of 3 frames
    for label, order in enumerate(objective.permutations.tolist()):
        out = objective.transform(clips, torch.full((2, 1), label))[:, 0]  # (N, 3, C, 3, H, W)
        assert out.shape == (2, 3, 3, 3, 8, 8)
        for i, j in enumerate(order):  # position i shows sub-clip order[i]
            assert torch.equal(out[:, i], clips[:, :, 3 * j: 3 * j + 3])
        restored = out[:, torch.tensor(order).argsort()]  # un-permute with the label's permutation
        assert torch.equal(torch.cat(restored.unbind(1), dim=2), clips)
        assert torch.equal(clip_order.concat_subclips(restored), clips)


def test_clip_order_labels_cover_all_six_permutations():
    objective = _build("clip_order")
    labels = torch.cat([objective.draw_labels(8, _gen(s)) for s in range(20)])
    assert objective.num_transforms == 6 and set(labels.flatten().tolist()) == set(range(6))


def test_vcop_head_is_shared_pairwise_fc_relu_concat_then_fc():
    head = clip_order.PairwiseOrderHead(5).eval()  # eval: dropout off
    assert head.pairs.tolist() == [[0, 1], [0, 2], [1, 2]]
    f = torch.randn(2, 3, 5, generator=_gen(4))
    pair = [torch.relu(head.pair(torch.cat([f[:, i], f[:, j]], dim=1))) for i, j in ((0, 1), (0, 2), (1, 2))]
    torch.testing.assert_close(head(f), head.order(torch.cat(pair, dim=1)))
    assert head(f).shape == (2, 6)


# -------------------------------------------------------------------------------------------- Cubic puzzle
def test_spatial_pieces_are_the_2x2_grid_and_tile_the_clip():
    clips = torch.rand(2, 3, 4, 16, 12, generator=_gen(5))
    p = cubic_puzzle.cut_pieces(clips, "spatial")
    assert p.shape == (2, 4, 3, 4, 8, 6)
    corners = [clips[..., :8, :6], clips[..., :8, 6:], clips[..., 8:, :6], clips[..., 8:, 6:]]
    for i, corner in enumerate(corners):
        assert torch.equal(p[:, i], corner)
    top, bottom = torch.cat([p[:, 0], p[:, 1]], dim=-1), torch.cat([p[:, 2], p[:, 3]], dim=-1)
    assert torch.equal(torch.cat([top, bottom], dim=-2), clips)
    assert torch.equal(cubic_puzzle.join_pieces(p, "spatial"), clips)


def test_temporal_pieces_are_four_consecutive_chunks_and_tile_the_clip():
    clips = torch.rand(2, 3, 8, 6, 6, generator=_gen(6))
    p = cubic_puzzle.cut_pieces(clips, "temporal")
    assert p.shape == (2, 4, 3, 2, 6, 6)
    for i in range(4):
        assert torch.equal(p[:, i], clips[:, :, 2 * i: 2 * i + 2])
    assert torch.equal(torch.cat(p.unbind(1), dim=2), clips)
    assert torch.equal(cubic_puzzle.join_pieces(p, "temporal"), clips)


@pytest.mark.parametrize("axis", ["spatial", "temporal"])
def test_puzzle_permutation_is_undone_by_its_label_for_all_24(axis):
    objective = _build("cubic_puzzle", axis=axis)
    assert objective.num_transforms == 24
    clips = torch.rand(2, 3, 8, 8, 8, generator=_gen(7))
    pieces = cubic_puzzle.cut_pieces(clips, axis)
    labels = torch.arange(24)[:, None]
    shuffled = objective.transform(clips.repeat(12, 1, 1, 1, 1), labels)[:, 0]  # clip n % 2, label n
    for n, order in enumerate(objective.permutations.tolist()):
        assert torch.equal(shuffled[n], pieces[n % 2, order])
        assert torch.equal(shuffled[n, torch.tensor(order).argsort()], pieces[n % 2])
    drawn = torch.cat([objective.draw_labels(8, _gen(s)) for s in range(40)])
    assert set(drawn.flatten().tolist()) == set(range(24))


def test_puzzle_view_shows_the_shuffled_quadrants():
    objective = _build("cubic_puzzle")
    batch = _batch(objective, b=2)
    g = _gen(13)
    (view,) = objective.make_views(batch, g)
    order = objective.permutations[objective.draw_labels(2, _gen(13))[:, 0]]  # replay the draw
    quadrants = [(slice(0, 8), slice(0, 8)), (slice(0, 8), slice(8, 16)), (slice(8, 16), slice(0, 8)),
                 (slice(8, 16), slice(8, 16))]
    for n in range(2):
        for i, (rows, cols) in enumerate(quadrants):  # quadrant i shows the clip's quadrant order[i]
            src_rows, src_cols = quadrants[order[n, i]]
            assert torch.equal(view[n, ..., rows, cols], batch["clip"][n, ..., src_rows, src_cols])


def test_puzzle_rejects_clips_too_small_to_cut():
    with pytest.raises(ValueError, match="too small"):
        cubic_puzzle.cut_pieces(torch.rand(1, 3, 3, 8, 8), "temporal")


# ------------------------------------------------------------------------------------- ψ and L_be (eq. 4)
def test_psi_is_the_spatial_max_per_channel_and_frame():
    fmap = torch.tensor([[[[[5.0, -1.0], [2.0, 0.0]], [[-3.0, -4.0], [-2.0, -9.0]]],
                          [[[0.0, 8.0], [1.0, 1.0]], [[7.0, 7.0], [6.0, 7.5]]]]])  # (B=1, C=2, T=2, H=2, W=2)
    assert torch.equal(pretext.spatial_max_pool(fmap), torch.tensor([[[5.0, -2.0], [8.0, 7.5]]]))
    # L_be = mean over (C, T) of (ψ_o − ψ_d)²: (25 + 4 + 64 + 56.25) / 4 against an all-zero map
    assert pretext.consistency(fmap, torch.zeros_like(fmap)).item() == pytest.approx(37.3125)
    # ψ ignores where in the frame the maximum sits (BE: the two copies differ in crop)
    assert pretext.consistency(fmap, fmap.flip(-1).flip(-2)).item() == 0.0


@pytest.mark.parametrize("name,options", TASKS)
def test_consistency_is_zero_at_gamma_zero_positive_otherwise_and_loss_is_lp_plus_beta_lbe(name, options):
    objective = _build(name, be_consistency=True, gamma=0.0, **options)
    batch = _batch(objective)
    _, stats = objective.training_loss(batch, _identity, _gen(8))
    assert stats["consistency"].item() == 0.0  # λ = 0: x^d = x^o exactly, same transform
    objective = _build(name, be_consistency=True, be_weight=2.5, **options)
    loss, stats = objective.training_loss(batch, _identity, _gen(8))
    assert stats["consistency"].item() > 0
    assert torch.equal(loss.detach(), stats["pretext_loss"] + 2.5 * stats["consistency"])
    loss, stats = _build(name, **options).training_loss(batch, _identity, _gen(8))
    assert "consistency" not in stats and torch.equal(loss.detach(), stats["pretext_loss"])


@pytest.mark.parametrize("name,options", RANDOM_TASKS)
def test_distracted_copy_gets_the_same_transform_and_be_leaves_the_task_unchanged(name, options):
    plain = _build(name, **options)
    batch = _batch(plain)
    for seed in range(3):
        clean = plain.make_views(batch, _gen(seed))
        views = _build(name, be_consistency=True, gamma=0.0, **options).make_views(batch, _gen(seed))
        assert len(views) == 2 * len(clean)
        for a, b in zip(clean, views[: len(clean)]):  # the same labels with and without BE
            assert torch.equal(a, b)
        for a, b in zip(views[: len(clean)], views[len(clean):]):  # x^d = x^o at λ = 0: same r
            assert torch.equal(a, b)
        distracted = _build(name, be_consistency=True, **options).make_views(batch, _gen(seed))
        assert not torch.equal(distracted[0], distracted[len(clean)])


def test_distracted_views_are_the_transform_of_be_distract():
    objective = _build("cubic_puzzle", be_consistency=True)
    batch = _batch(objective)
    views = objective.make_views(batch, _gen(9))
    g = _gen(9)  # replay: labels, then BE's distractor
    labels = objective.draw_labels(4, g)
    x_d = distractors.distract(batch["clip"], "intra_frame", 0.3, "video", g)
    assert len(views) == 2
    assert torch.equal(views[1], cubic_puzzle.join_pieces(objective.transform(x_d, labels)[:, 0], "spatial"))
    assert not torch.equal(views[1], views[0])


@pytest.mark.parametrize("name,options", TASKS)
def test_views_are_unit_range_float_clips(name, options):
    objective = _build(name, be_consistency=True, **options)
    batch = _batch(objective)
    views = objective.make_views(batch, _gen(10))
    rotations = 4 if (name, options) == ("rotnet", {}) else 1  # RotNet's default feeds all four
    assert len(views) == 2 * rotations  # x^o's transforms, then x^d's
    for view in views:  # the pretext input laid out as one clip: same shape as the input clip
        assert view.shape == batch["clip"].shape and view.dtype == torch.float32
        assert view.min() >= 0 and view.max() <= 1


def test_colour_augmentation_commutes_with_rotation_and_subclip_order():
    x = torch.rand(2, 3, 6, 16, 16, generator=_gen(11))
    k = torch.tensor([[1], [3]])
    rotated_after = rotnet.rotate(colour_augment(x, _gen(12)), k)
    rotated_before = colour_augment(rotnet.rotate(x, k)[:, 0], _gen(12))
    torch.testing.assert_close(rotated_after[:, 0], rotated_before, atol=1e-5, rtol=0)
    order = torch.tensor([2, 0, 1])
    shuffled = torch.cat(clip_order.split_subclips(x)[:, order].unbind(1), dim=2)
    torch.testing.assert_close(torch.cat(clip_order.split_subclips(colour_augment(x, _gen(12)))[:, order]
                                         .unbind(1), dim=2), colour_augment(shuffled, _gen(12)),
                               atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------ training step
def _step(name, options, be_on, seed, augment=None):
    torch.manual_seed(seed)  # head init and dropout
    objective = _build(name, be_consistency=be_on, **options)
    g = _gen(seed)
    loss, stats = objective.training_loss(_batch(objective), augment(g) if augment else _identity, g)
    loss.backward()
    return objective, loss.detach(), stats


@pytest.mark.parametrize("be_on", [False, True])
@pytest.mark.parametrize("name,options", TASKS)
def test_training_step_is_finite_reaches_the_backbone_and_is_deterministic(name, options, be_on):
    objective, loss, stats = _step(name, options, be_on, 0)
    assert torch.isfinite(loss) and all(math.isfinite(float(v)) for v in stats.values())
    assert set(stats) == {"pretext_loss", "pretext_acc"} | ({"consistency"} if be_on else set())
    # accuracy is a share of the batch's pretext predictions: 4 clips × 4 rotations for RotNet's default, else 4
    n = 16 if (name, options) == ("rotnet", {}) else 4
    correct = float(stats["pretext_acc"]) * n
    assert abs(correct - round(correct)) < 1e-5 and 0 <= round(correct) <= n
    grads = [p.grad for p in objective.backbone.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert grads[0].abs().sum() > 0  # the first convolution learns
    assert torch.equal(loss, _step(name, options, be_on, 0)[1])


def test_training_step_with_the_suites_colour_augmentation_is_deterministic():
    def suite_augment(g):
        return lambda x: normalize(colour_augment(x, g))

    _, loss, stats = _step("clip_order", {}, True, 1, suite_augment)
    assert torch.isfinite(loss) and stats["consistency"] > 0
    assert torch.equal(loss, _step("clip_order", {}, True, 1, suite_augment)[1])
