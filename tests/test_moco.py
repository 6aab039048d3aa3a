"""MoCo mechanics: EMA update, queue FIFO with video ids, symmetric loss, shuffle-BN key order."""
import torch
import torch.nn.functional as F

from scenebias.models.backbones import build_backbone
from scenebias.train.moco import MoCo, info_nce_logits


def _moco(queue_size=8, momentum=0.9, splits=2):
    torch.manual_seed(0)
    backbone = build_backbone("tiny3d", width=4)
    return MoCo(backbone, backbone.feature_dim, dim=16, queue_size=queue_size, momentum=momentum,
                temperature=0.1, shuffle_bn_splits=splits)


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
