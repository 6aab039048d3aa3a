"""Data-parallel training under `torchrun` (DistributedDataParallel), and the rules that make it match one process.

    torchrun --standalone --nproc_per_node 2 -m scenebias.cli -- pretrain --preset smoke --run moco

(the `--` stops torchrun's own parser, which would take `--run` for an abbreviation of its `--run-path`).

One process (plain `python`, or WORLD_SIZE=1) is the default; every helper is then the identity and results are
exactly those of the single-process code. Under W processes the conventions are:

- `pretrain.batch_size` is the *global* batch B (the papers quote global batches: FAME 64 over 8 GPUs), so a
  config means the same optimisation on any number of processes. Each rank trains on B / W clips per step:
  rank r gets the r-th contiguous block of every global batch of the one-process epoch order
  (`shard_indices`), so gathering per-rank tensors in rank order (`concat_all_gather`) gives back the
  one-process batch order. B must be a multiple of W.
- DDP averages gradients over ranks: the gradient of the global-batch mean loss, as on one process.
- Randomness that acts per clip (augmentation, FAME partners and masks, BE's λ, dropout) draws from a per-rank
  stream (`rank_seed`); rank 0's stream is the one-process stream. So W ranks are not bit-identical to one
  process: they are the same training with independent draws per clip. Methods that pair clips within a
  batch (FAME's background partners, Mixup/CutMix) pair them within a rank's B / W clips, as per-GPU code does
  (so B / W must be at least 2 for them).
- BatchNorm statistics are per rank (as in the papers' DDP code); MoCo's key encoder uses shuffle-BN across
  ranks and gathers keys before enqueueing, so the queue is identical on every rank
  (`scenebias.train.moco.MoCo`).
- Rank 0 alone writes checkpoints, logs and model files; the others wait at a barrier. Every rank loads the
  checkpoint on resume, so `work_dir` must be on a file system all ranks see (always true on one node).
- Fine-tuning (`scenebias.evaluate.finetune`) follows the same rules; its global batches are the one-process
  loader's, an uneven last batch is weighted back to the global mean, and test videos are split over the ranks.

Learning-rate scaling (`pretrain.lr_scaling_base_batch`, off by default): the linear scaling rule of Goyal et
al. 2017 ("Accurate, Large Minibatch SGD", §2.1), lr_eff = lr · B / base_batch, for running a schedule tuned at
`base_batch` with another global batch B. It depends on the global batch only, never on the number of ranks.
"""
from __future__ import annotations

import atexit
import inspect
import os
from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError

RANK_SEED_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant: spreads rank r's seeds far from rank 0's


# ------------------------------------------------------------------------------------------ process group
def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} must be an integer (set by torchrun)") from None
    if value < 0:
        raise ConfigError(f"environment variable {name}={raw!r} must be >= 0")
    return value


def launcher_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) as `torchrun` sets them (RANK, WORLD_SIZE, LOCAL_RANK); (0, 1, 0) without."""
    world = max(1, _env_int("WORLD_SIZE", 1))
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if rank >= world:
        raise ConfigError(f"environment variable RANK={rank} must be below WORLD_SIZE={world}")
    return rank, world, local


def init_from_env(device: str = "cpu") -> str:
    """Join the process group `torchrun` describes (idempotent) and return this rank's device.

    Backend: NCCL on CUDA, Gloo on CPU. Under several processes a plain "cuda" becomes "cuda:LOCAL_RANK" (one GPU
    per process). Without torchrun (WORLD_SIZE unset or 1) nothing happens and `device` comes back unchanged.
    """
    _, world, local = launcher_world()
    on_cuda = str(device).startswith("cuda")
    if world > 1 and on_cuda:
        if torch.cuda.device_count() <= local:
            raise ConfigError(f"LOCAL_RANK={local} needs GPU {local}, but only {torch.cuda.device_count()} "
                              f"are visible; use --nproc_per_node <= the number of GPUs")
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if on_cuda else "gloo")  # env:// rendezvous from torchrun
        atexit.register(_destroy)
    return device


def _destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        # NCCL needs to know this rank's GPU (set by init_from_env), else it guesses and may hang
        on_nccl = dist.get_backend() == "nccl"
        dist.barrier(device_ids=[torch.cuda.current_device()] if on_nccl else None)


# ---------------------------------------------------------------------------------------- collectives
@torch.no_grad()
def concat_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's `tensor` concatenated along dim 0 in rank order (no gradient flows back); identity on one
    process. All ranks must pass the same shape (equal shards of the global batch guarantee it)."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def broadcast_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite `tensor` in place with rank `src`'s copy; identity on one process."""
    if is_distributed():
        dist.broadcast(tensor, src=src)
    return tensor


@torch.no_grad()
def sum_over_ranks(values: Sequence[float], device: str | torch.device = "cpu") -> list[float]:
    """Sum of each value over ranks (one all-reduce for all of them); the values themselves on one process."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def mean_over_ranks(values: Sequence[float], device: str | torch.device = "cpu") -> list[float]:
    """Mean of each value over ranks; the values themselves on one process."""
    if not is_distributed():
        return list(values)
    return [v / world_size() for v in sum_over_ranks(values, device)]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable `obj`, in rank order (sizes may differ between ranks); [obj] on one process."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool, device: str | torch.device = "cpu") -> bool:
    """True on every rank when it is true on at least one (e.g. a stop request that reached one worker first)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


# ------------------------------------------------------------------------------------ data and seeds
def local_batch_size(global_batch: int, world: int, where: str = "pretrain.batch_size") -> int:
    """Clips per rank and step; the global batch must split evenly so every rank's loss weighs the same."""
    if global_batch % world:
        raise ConfigError(f"{where}: the global batch {global_batch} does not split evenly over {world} processes "
                          f"(torchrun --nproc_per_node x nodes); use a multiple of {world}")
    return global_batch // world


def shard_indices(order: Sequence[int], global_batch: int, rank: int, world: int) -> list[int]:
    """Rank `rank`'s part of an epoch order: the rank-th contiguous block of each full global batch.

    Blocks of all ranks are disjoint, and their concatenation in rank order is the global batch, so per-rank
    results gathered in rank order are in the one-process order. A trailing partial batch is dropped (as the
    one-process loop does)."""
    local = local_batch_size(global_batch, world)
    steps = len(order) // global_batch
    return [i for s in range(steps)
            for i in order[s * global_batch + rank * local: s * global_batch + (rank + 1) * local]]


def split_batch(batch: Sequence[int], rank: int, world: int) -> list[int]:
    """Rank `rank`'s contiguous part of one batch whose size need not divide by `world` (e.g. an epoch's last
    batch): parts differ by at most one item, the first `len % world` ranks hold the longer ones."""
    size, extra = divmod(len(batch), world)
    start = rank * size + min(rank, extra)
    return list(batch[start: start + size + (rank < extra)])


def rank_seed(seed: int, rank: int) -> int:
    """A seed for rank `rank`'s random stream derived from `seed`; rank 0 keeps `seed`, so one process is unchanged."""
    return seed if rank == 0 else (seed ^ (rank * RANK_SEED_MIX)) % 2**63


def scaled_lr(lr: float, global_batch: int, base_batch: int | None) -> float:
    """Linear scaling rule (Goyal et al. 2017, §2.1): lr · global_batch / base_batch; `lr` when base_batch is None."""
    return lr if base_batch is None else lr * global_batch / base_batch


# ---------------------------------------------------------------------------------------------- model
class ObjectiveStep(nn.Module):
    """`TrainObjective.training_loss` as a `forward`, so DDP sees the step (it hooks `forward` to set up the
    gradient all-reduce of the following backward)."""

    def __init__(self, objective: nn.Module) -> None:
        super().__init__()
        self.objective = objective

    def forward(self, batch, augment, generator):
        return self.objective.training_loss(batch, augment, generator)


def ddp_module(module: nn.Module, device: str, find_unused_parameters: bool = False) -> nn.Module:
    """`module` (already on `device`) wrapped in DistributedDataParallel, without a buffer sync per forward
    (see `wrap_ddp`)."""
    device_ids = [torch.device(device).index] if str(device).startswith("cuda") else None
    ddp_class = nn.parallel.DistributedDataParallel
    # torch >= 2.14 renames the option (and still syncs buffers once at construction, which we want)
    no_forward_sync = ({"forward_sync_buffers": False}
                       if "forward_sync_buffers" in inspect.signature(ddp_class).parameters
                       else {"broadcast_buffers": False})
    return ddp_class(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters,
                     **no_forward_sync)


@torch.no_grad()
def broadcast_buffers_(module: nn.Module, src: int = 0) -> None:
    """Give every rank rank `src`'s buffers (e.g. BN running statistics before a test, so that all ranks test
    the model rank 0 saves)."""
    for buffer in module.buffers():
        broadcast_(buffer, src)


def wrap_ddp(objective: nn.Module, device: str) -> nn.Module:
    """The objective's step wrapped in DistributedDataParallel.

    No buffer sync per forward (`forward_sync_buffers=False`, formerly `broadcast_buffers=False`): DDP would
    otherwise broadcast every buffer from rank 0 before each forward, MoCo's queue included (32 MB at
    K = 65,536), although the queue is identical on every rank by construction.
    BatchNorm running statistics therefore stay per rank; rank 0's are the ones saved (train-mode BN, which is
    all that training uses, reads batch statistics only). A method whose step leaves some trainable parameter
    without gradient sets `ddp_find_unused_parameters = True` on its objective.
    """
    return ddp_module(ObjectiveStep(objective), device,
                      bool(getattr(objective, "ddp_find_unused_parameters", False)))


__all__ = ["launcher_world", "init_from_env", "is_distributed", "rank", "world_size", "is_main_process", "barrier",
           "concat_all_gather", "broadcast_", "sum_over_ranks", "mean_over_ranks", "all_gather_objects", "any_rank",
           "local_batch_size", "shard_indices", "split_batch", "rank_seed", "scaled_lr", "ObjectiveStep",
           "ddp_module", "broadcast_buffers_", "wrap_ddp"]
