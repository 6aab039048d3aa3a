"""MoCo mechanics: EMA update, queue FIFO with video ids, symmetric loss and its enqueue order, shuffle-BN key
order."""
import pytest
import torch
import torch.nn.functional as F

from scenebias.errors import ConfigError
from scenebias.models.backbones import build_backbone
from scenebias.plugins import get_method
from scenebias.train import moco as moco_module
from scenebias.train.moco import MoCo, info_nce_logits


def _moco(queue_size=8, momentum=0.9, splits=2, enqueue="after_step"):
    torch.manual_seed(0)
    backbone = build_backbone("tiny3d", width=4)
    return MoCo(backbone, backbone.feature_dim, dim=16, queue_size=queue_size, momentum=momentum,
                temperature=0.1, shuffle_bn_splits=splits, enqueue=enqueue)


def test_key_encoder_is_ema_of_query_encoder():
    m = _moco(momentum=0.9)
    with torch.no_grad():
        for p in m.encoder_q.parameters():
            p.add_(1.0)
    before_k = [p.clone() for p in m.encoder_k.parameters()]
    q = [p.clone() for p in m.encoder_q.parameters()]
    m.momentum_update()
    for pk0, pq, pk1 in zip(before_k, q, m.encoder_k.parameters()):
        torch.testing.assert_close(pk1, 0.9 * pk0 + 0.1 * pq)
    assert all(not p.requires_grad for p in m.encoder_k.parameters())


def test_queue_is_fifo_and_wraps_with_video_ids():
    m = _moco(queue_size=5)
    keys = F.normalize(torch.randn(3, 16), dim=1)
    m.enqueue(keys, torch.tensor([10, 11, 12]))
    m.enqueue(keys[:3] * -1, torch.tensor([20, 21, 22]))  # wraps: slots 3, 4, 0
    assert m.queue_ptr.item() == 1
    assert m.queue_video.tolist() == [22, 11, 12, 20, 21]
    torch.testing.assert_close(m.queue[0], -keys[2])
    torch.testing.assert_close(m.queue[1], keys[1])


def test_info_nce_positive_in_column_zero():
    q = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    k = q.clone()
    queue = F.normalize(torch.tensor([[1.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]), dim=1)
    logits = info_nce_logits(q, k, queue, tau=0.5)
    assert logits.shape == (2, 4)
    torch.testing.assert_close(logits[:, 0], torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(logits[0, 1:], torch.tensor([2 ** -0.5, -1.0, 0.0]) / 0.5)


def test_forward_symmetric_enqueues_both_passes_and_reports_stats():
    m = _moco(queue_size=16)
    a, b = torch.rand(4, 3, 4, 16, 16), torch.rand(4, 3, 4, 16, 16)
    idx = torch.tensor([0, 1, 2, 3])
    loss, stats = m(a, b, idx, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss.requires_grad
    assert m.queue_ptr.item() == 8  # 2 passes x 4 keys
    assert sorted(m.queue_video[:8].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert set(stats) == {"instance_acc", "pos_sim", "neg_sim", "queue_same_video"}
    loss.backward()
    assert all(p.grad is None for p in m.encoder_k.parameters())


def test_shuffled_keys_come_back_in_input_order():
    m = _moco(splits=1)
    m.encoder_k.eval()  # BN in eval: keys independent of batch composition and order
    x = torch.rand(6, 3, 4, 16, 16)
    k_shuffled = m.keys(x, torch.Generator().manual_seed(3))
    k_direct = F.normalize(m.encoder_k(x), dim=1)
    torch.testing.assert_close(k_shuffled, k_direct)


def test_queue_same_video_counts_false_negatives():
    m = _moco(queue_size=4)
    m.enqueue(F.normalize(torch.randn(4, 16), dim=1), torch.tensor([7, 7, 8, 9]))
    q = F.normalize(torch.randn(2, 16), dim=1)
    _, stats = m.contrast(q, q, torch.tensor([7, 5]))
    assert stats["queue_same_video"].item() == (2 / 4 + 0 / 4) / 2


def test_moco_step_runs_under_bf16_autocast():
    """Keys computed in bf16 (GPU default) are stored in the fp32 queue (perf harness found the mismatch)."""
    from scenebias.models.backbones import build_backbone
    from scenebias.plugins import get_method

    torch.manual_seed(0)
    objective = get_method("moco").build(build_backbone("tiny3d", width=4), 3, {"queue_size": 16})
    views = torch.rand(4, 2, 3, 4, 16, 16)
    batch = {"views": views, "index": torch.arange(4), "label": torch.zeros(4, dtype=torch.long)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = objective.training_loss(batch, lambda x: x, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and objective.moco.queue.dtype == torch.float32
    assert int(objective.moco.queue_ptr) == 8


# ------------------------------------------------------------------------------------- enqueue order
def _unit(*entries):
    """A (16,) unit vector with the given {index: value} entries."""
    v = torch.zeros(16)
    for i, x in entries:
        v[i] = x
    return F.normalize(v, dim=0)


@pytest.mark.parametrize("enqueue", ["after_step", "between_passes"])
def test_pass_two_meets_pass_one_keys_only_between_passes(monkeypatch, enqueue):
    """Tiny hand-made features, an all-zero queue, τ = 0.1: pass 2's logit of q_b[1] against queue slot 1 is
    q_b[1]·k_b[1]/τ = (1/√2)/0.1 ≈ 7.07 when pass 1's keys were enqueued first (k_b[1] went to slot 1), and
    0 (the empty slot) when the queue is the one of before the step."""
    logits = []
    monkeypatch.setattr(moco_module, "info_nce_logits", lambda *a: logits.append(info_nce_logits(*a)) or logits[-1])
    m = _moco(queue_size=4, enqueue=enqueue)
    m.queue.zero_()
    q_a, k_a = torch.stack([_unit((0, 1)), _unit((3, 1))]), torch.stack([_unit((5, 1)), _unit((3, 1))])
    q_b, k_b = torch.stack([_unit((5, 1)), _unit((1, 1))]), torch.stack([_unit((5, 1)), _unit((1, 1), (2, 1))])
    m.symmetric_loss(q_a, q_b, k_a, k_b, torch.tensor([0, 1]))
    first, second = logits
    assert first.shape == second.shape == (2, 1 + 4)
    torch.testing.assert_close(first[:, 1:], torch.zeros(2, 4))  # pass 1 sees the empty queue either way
    torch.testing.assert_close(second[:, 0], torch.tensor([10.0, 0.0]))  # positives q_b·k_a / τ, unchanged
    own_key = second[1, 1 + 1]
    if enqueue == "between_passes":
        assert own_key.item() == pytest.approx(2 ** -0.5 / 0.1)  # q_b[1] meets its own clip's key k_b[1]
        torch.testing.assert_close(m.queue, torch.cat([k_b, k_a]))  # pass 1's keys, then pass 2's
    else:
        assert own_key.item() == 0.0
        torch.testing.assert_close(second[:, 1:], torch.zeros(2, 4))
        torch.testing.assert_close(m.queue, torch.cat([k_a, k_b]))  # both after the step, as before the option


class _QueueSpy:
    """Wraps MoCo.contrast; records each call's key argument and the queue it scored against."""

    def __init__(self, moco):
        self.calls, self.inner, self.moco = [], moco.contrast, moco
        moco.contrast = self

    def __call__(self, q, k, video_index, extra_negatives=None):
        self.calls.append((k.detach().clone(), self.moco.queue.clone()))
        return self.inner(q, k, video_index, extra_negatives)


MOCO_BASED = [("moco", {}), ("moco+be", {}), ("moco+be", {"hard_negative": True}), ("moco+fame", {}),
              ("moco+mixup", {"hard_negative": True}), ("moco+cutmix", {}), ("dsm", {})]


@pytest.mark.parametrize("name, options", MOCO_BASED)
@pytest.mark.parametrize("enqueue", ["after_step", "between_passes"])
def test_every_moco_based_method_takes_the_enqueue_order(name, options, enqueue):
    """Through a run's options, for MoCo and every method built on it (BE's and DSM's hard-negative step
    included): between passes, pass 2 scores against a queue whose newest B keys are pass 1's keys; after the
    step, both passes see the same queue and it then holds [pass 2's keys (k_a), pass 1's keys (k_b)]."""
    torch.manual_seed(0)
    b = 4
    objective = get_method(name).build(build_backbone("tiny3d", width=4), 3, {"queue_size": 16, "enqueue": enqueue,
                                                                              **options})
    assert objective.moco.enqueue_order == enqueue
    spy = _QueueSpy(objective.moco)
    views = torch.rand(b, 3, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    objective.training_loss({"views": views, "index": torch.arange(b)}, lambda x: x, torch.Generator().manual_seed(2))
    (k_1, queue_1), (k_2, queue_2) = spy.calls
    queue_after = objective.moco.queue
    if enqueue == "between_passes":
        torch.testing.assert_close(queue_2[:b], k_1)
        torch.testing.assert_close(queue_2[b:], queue_1[b:])
        torch.testing.assert_close(queue_after[:2 * b], torch.cat([k_1, k_2]))
    else:
        assert torch.equal(queue_2, queue_1)
        torch.testing.assert_close(queue_after[:2 * b], torch.cat([k_2, k_1]))
    assert int(objective.moco.queue_ptr) == 2 * b  # never the hard negatives


def test_enqueue_order_is_validated():
    assert get_method("moco").defaults["enqueue"] == "after_step"
    for name, _ in MOCO_BASED:
        assert get_method(name).build(build_backbone("tiny3d", width=4), 3).moco.enqueue_order == "after_step"
    with pytest.raises(ConfigError, match="enqueue"):
        get_method("moco+fame").options({"enqueue": "before_step"})
    with pytest.raises(ValueError, match="enqueue"):
        _moco(enqueue="sometimes")
