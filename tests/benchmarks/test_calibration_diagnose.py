"""The calibration study's minimal contrastive loop (benchmarks.calibration.diagnose --loss in-batch): the issue's
reference loop, on the method's own views, with the other clips of the batch as the only negatives."""
import math

import pytest
import torch

from benchmarks.calibration.diagnose import _in_batch_loss
from scenebias.models.backbones import build_backbone
from scenebias.plugins import get_method


def _objective(method="moco", **options):
    return get_method(method).build(build_backbone("tiny3d", width=2), 4, {"queue_size": 8, **options})


def _batch(n=6):
    views = torch.rand(n, 2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    return {"views": views, "index": torch.arange(n), "label": torch.zeros(n, dtype=torch.long)}


class _Encoder(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_a_collapsed_encoder_scores_log_batch_and_a_perfect_one_scores_near_zero():
    objective = _objective()
    batch = _batch()
    # every clip the same embedding: chance among the batch, positive and negative cosine both 1
    objective.moco.encoder_q = _Encoder(lambda x: torch.ones(x.shape[0], 5))
    loss, stats = _in_batch_loss(objective, tau=0.1)(batch, lambda x: x, torch.Generator())
    assert loss.item() == pytest.approx(math.log(6), rel=1e-5)
    assert stats["pos_sim"].item() == pytest.approx(1.0) and stats["neg_sim"].item() == pytest.approx(1.0)
    # both clips of video i carry i/10 in their first pixel; an encoder that reads it out names the video
    batch["views"][:, :, 0, 0, 0, 0] = torch.arange(6, dtype=torch.float32)[:, None] / 10
    objective.moco.encoder_q = _Encoder(
        lambda x: torch.nn.functional.one_hot((x[:, 0, 0, 0, 0] * 10).round().long(), 6).float())
    loss, stats = _in_batch_loss(objective, tau=0.1)(batch, lambda x: x, torch.Generator())
    assert stats["instance_acc"].item() == 1.0 and loss.item() < 1e-3
    assert stats["neg_sim"].item() == 0.0


def test_the_loop_trains_the_methods_own_views_and_needs_a_moco_based_method():
    objective = _objective("moco+fame", mask="grid")
    seen = []
    objective.make_views = lambda batch, g: (seen.append(True) or (batch["views"][:, 0], batch["views"][:, 1]))
    loss, _ = _in_batch_loss(objective, tau=0.1)(_batch(), lambda x: x, torch.Generator())
    loss.backward()
    assert seen and any(p.grad is not None for p in objective.moco.encoder_q.parameters())
    assert all(p.grad is None for p in objective.moco.encoder_k.parameters())  # no momentum encoder in the loop
    with pytest.raises(SystemExit, match="MoCo-based"):
        _in_batch_loss(get_method("rotnet").build(build_backbone("tiny3d", width=2), 4, {}), tau=0.1)
