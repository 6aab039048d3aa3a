"""Data-parallel pretraining and fine-tuning (2 CPU ranks, Gloo, torchrun's env:// rendezvous) against one
process with the same global batch.

What must match, and why (scenebias.train.distributed states the conventions):
- Data: each rank trains on its contiguous block of every global batch, and DDP averages the gradients, so the
  optimisation is the one-process one up to the order of float sums (per-rank means, then the all-reduce).
- MoCo: keys are gathered before they are enqueued, so the queue is identical on every rank and, gathered pass
  by pass, equal to the one-process queue slot for slot, whether the passes enqueue after the step or one by
  one (`enqueue: between_passes`). Shuffle-BN across 2 ranks with `shuffle_bn_splits=2` forms exactly the
  one-process BN groups of the key encoder.
- What cannot match exactly: BatchNorm in the *query* encoder normalises over each rank's half batch instead of
  the whole batch (as in the papers' DDP code), so with BN the losses and weights leave the one-process ones
  from the first step on. Hence two checks:
  (1) BN replaced by GroupNorm (per-sample statistics): every weight, the queue and the logged losses of a
      6-step run agree to float-summation tolerance (rtol 1e-4, atol 1e-6). Training moves weights by > 1e-3,
      so the tolerance is far below any real discrepancy: a missing gradient average doubles the step, a wrong
      shard changes the data, an ungathered queue holds other keys.
  (2) With BN: after one step the queue (keys that went through shuffle-BN across ranks) equals the
      one-process queue (rtol 1e-4, atol 1e-5: convolutions over other batch sizes may sum in another order),
      and its video ids are equal exactly.
Randomness: the runs use the identity augmentation, so no per-clip draw differs between the set-ups; rank 0
draws the shuffle-BN permutation from the one-process stream.
Also checked: the ranks end with identical parameters and queues; rank 0 alone writes checkpoints and the log;
a 2-rank run killed like `kill -9` mid-epoch and resumed under 2 ranks ends bit-identical to an uninterrupted
2-rank run (for 2 ranks every all-reduced element is a + b, so the bucket layout cannot change a bit).
Fine-tuning (GroupNorm, no dropout): the same global batches as one process, the uneven last batch (5 clips
as 3 + 2) weighted back to the global mean, test videos split over the ranks: the one-process weights (same
tolerance) and metrics; with BN, every rank returns rank 0's model (running statistics included) and results.

The fast tests fork the ranks from one interpreter that imported torch once, with exactly the environment
torchrun gives its workers; the `slow` test runs the same script under torchrun itself.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from scenebias.errors import ConfigError
from scenebias.train import distributed as ddp
from scenebias.train.loop import TrainConfig, lr_at, step_seed

SCRIPT = textwrap.dedent("""
    import os
    import socket
    import sys
    from pathlib import Path

    import torch
    import torch.multiprocessing as mp
    from torch import nn
    from torch.utils.data import Dataset

    from scenebias.models.backbones import build_backbone
    from scenebias.evaluate.finetune import FinetuneConfig, finetune
    from scenebias.plugins import get_method
    from scenebias.train import distributed as ddp
    from scenebias.train.loop import TrainConfig, train

    class Pairs(Dataset):
        def __init__(self, n): self.n, self.epoch = n, 0
        def set_epoch(self, e): self.epoch = e
        def __len__(self): return self.n
        def __getitem__(self, i):
            g = torch.Generator().manual_seed(1000 * self.epoch + i)
            views = torch.rand(2, 3, 4, 16, 16, generator=g)
            return {"views": views, "clip": views[0], "label": i % 3, "index": i}

    class Brightness(Dataset):  # the class is the clip's brightness; seeded noise per (index, epoch)
        def __init__(self, n, mode): self.n, self.mode, self.epoch = n, mode, 0
        def set_epoch(self, e): self.epoch = e
        def __len__(self): return self.n
        def __getitem__(self, i):
            g = torch.Generator().manual_seed(1009 * i + self.epoch + (7 if self.mode == "test" else 0))
            clips = (0.15 + 0.35 * (i % 3) + 0.1 * torch.rand(2, 3, 4, 16, 16, generator=g)).clamp(0, 1)
            return {"clip": clips[0], "label": i % 3, "index": i} if self.mode == "single" else \
                   {"clips": clips, "label": i % 3, "index": i}

    def group_norm(module):  # per-sample statistics: no batch (hence no rank) dependence
        for name, child in module.named_children():
            if isinstance(child, nn.BatchNorm3d):
                setattr(module, name, nn.GroupNorm(1, child.num_features))
            else:
                group_norm(child)
        return module

    def run(root, scenarios, fault=0):
        # the test's fault injection: die like `kill -9` once `fault` steps are done (0: never)
        after_step = (lambda step: os._exit(137) if step >= fault else None) if fault else None
        saves = []
        real_save = torch.save
        def counting_save(obj, f, *args, **kwargs):
            saves.append(str(f))
            return real_save(obj, f, *args, **kwargs)
        torch.save = counting_save
        torch.set_num_threads(1)
        for scenario in scenarios:
            name, norm, epochs, videos = scenario.split(":")
            saves.clear()
            torch.manual_seed(0)
            backbone = build_backbone("tiny3d", width=4)
            if norm == "group":
                group_norm(backbone)
            if name.startswith("finetune"):
                cfg = FinetuneConfig(epochs=int(epochs), lr=0.05, dropout=0.0, batch_size=8, test_batch_size=2,
                                     progress=False)
                res = finetune(backbone, Brightness(int(videos), "single"), {"test": Brightness(7, "test")}, 3,
                               cfg, "cpu", seed=0, normalize=lambda x: x, return_model=True)
                real_save({"state": res.pop("model").state_dict(), "results": res, "world": ddp.world_size()},
                          root / name / f"rank{ddp.rank()}.pt")
                continue
            options = {"queue_size": 32, "shuffle_bn_splits": 2}
            if name.startswith("between"):  # the authors' symmetric-loss order: pass 1's keys enqueued first
                options["enqueue"] = "between_passes"
            objective = get_method("moco").build(backbone, 3, options)
            init = {k: v.clone() for k, v in objective.state_dict().items()}
            cfg = TrainConfig(epochs=int(epochs), batch_size=8, lr=0.05, checkpoint_every=1)
            log = train(objective, Pairs(int(videos)), cfg, root / name / "work", seed=0, progress=False,
                        augment_factory=lambda g: (lambda x: x), after_step=after_step)
            real_save({"state": objective.state_dict(), "init": init, "log": log, "saves": list(saves),
                       "world": ddp.world_size()}, root / name / f"rank{ddp.rank()}.pt")

    def rank_main(rank, world, port, root, scenarios, fault):
        if world > 1:  # what torchrun sets for each worker: the env:// rendezvous ddp.init_from_env joins
            os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                              MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        run(Path(root), scenarios, int(fault or 0))

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    if __name__ == "__main__":
        if os.environ.get("WORLD_SIZE"):  # a torchrun worker
            run(Path(sys.argv[1]), sys.argv[2:])
            sys.exit(0)
        # jobs "root|ranks|fault|scenario,scenario": torch is imported once, every job's ranks are forked
        for job in sys.argv[1:]:
            root, world, fault, scenarios = job.split("|")
            for name in {s.split(":")[0] for s in scenarios.split(",")}:
                Path(root, name).mkdir(parents=True, exist_ok=True)
            try:
                mp.start_processes(rank_main, nprocs=int(world), start_method="fork",
                                   args=(int(world), free_port(), root, scenarios.split(","), fault))
                print(f"job {root}: ok", flush=True)
            except mp.ProcessExitedException as exc:
                print(f"job {root}: exit {exc.exit_code}", flush=True)
""")

GROUP = "group:group:2:24"  # 3 steps per epoch, 6 steps; queue 32 = two steps of 16 keys, wraps 3 times
BETWEEN = "between:group:2:24"  # GROUP with MoCo's `enqueue: between_passes`
BATCH = "batch:batch:1:8"  # one step
FINETUNE = "finetune:group:2:21"  # global batches 8, 8, 5: the last one splits 3 / 2 over the ranks
FINETUNE_BN = "finetune_bn:batch:1:21"
KILL_AT = 5  # global step: mid epoch 2, after the epoch-1 checkpoint


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _script(tmp: Path) -> Path:
    script = tmp / "ddp_script.py"
    script.write_text(SCRIPT)
    return script


def _load(tmp: Path, root: str, scenario: str, rank: int) -> dict:
    return torch.load(tmp / root / scenario.split(":")[0] / f"rank{rank}.pt", weights_only=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process; two ranks; two ranks killed at step KILL_AT; the same two ranks resumed."""
    tmp = tmp_path_factory.mktemp("ddp")
    jobs = [f"{tmp / 'one'}|1||{GROUP},{BATCH},{FINETUNE},{BETWEEN}",
            f"{tmp / 'two'}|2||{GROUP},{BATCH},{FINETUNE},{FINETUNE_BN},{BETWEEN}",
            f"{tmp / 'resume'}|2|{KILL_AT}|{GROUP}", f"{tmp / 'resume'}|2||{GROUP}"]
    done = subprocess.run([sys.executable, str(_script(tmp)), *jobs], env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    status = [line for line in done.stdout.splitlines() if line.startswith("job ")]
    assert status == [f"job {tmp / 'one'}: ok", f"job {tmp / 'two'}: ok", f"job {tmp / 'resume'}: exit 137",
                      f"job {tmp / 'resume'}: ok"], done.stdout + done.stderr
    (tmp / "launcher.out").write_text(done.stdout + done.stderr)
    return tmp


def _is_bn_statistic(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


@pytest.mark.parametrize("scenario", [GROUP, BETWEEN])
def test_two_ranks_match_one_process_without_batch_statistics(runs, scenario):
    """Also with `enqueue: between_passes`: each pass's keys are gathered before they are enqueued, so pass 2
    meets the global batch's pass-1 keys on every rank, as in one process."""
    one, two = _load(runs, "one", scenario, 0), _load(runs, "two", scenario, 0)
    assert one["world"] == 1 and two["world"] == 2
    moved = max((one["state"][k].float() - one["init"][k].float()).abs().max().item() for k in one["state"])
    assert moved > 1e-3  # the tolerance below is far smaller than what training changed
    for key, value in one["state"].items():
        if value.is_floating_point():
            torch.testing.assert_close(two["state"][key], value, rtol=1e-4, atol=1e-6, msg=key)
        else:
            assert torch.equal(two["state"][key], value), key  # queue_video, queue_ptr
    assert [r["epoch"] for r in two["log"]] == [1, 2]
    for r1, r2 in zip(one["log"], two["log"]):  # the log holds means over ranks = the global-batch means
        for key in ("loss", "lr", "instance_acc", "pos_sim", "neg_sim", "queue_same_video"):
            assert r2[key] == pytest.approx(r1[key], rel=1e-5, abs=1e-7), key
    if scenario == BETWEEN:  # the option took effect: another training than GROUP's from the same start
        assert not torch.equal(one["state"]["moco.queue"], _load(runs, "one", GROUP, 0)["state"]["moco.queue"])


def test_queue_after_one_step_with_shuffle_bn_across_ranks_is_the_one_process_queue(runs):
    one, two = _load(runs, "one", BATCH, 0)["state"], _load(runs, "two", BATCH, 0)["state"]
    assert int(two["moco.queue_ptr"]) == int(one["moco.queue_ptr"]) == 16
    assert torch.equal(two["moco.queue_video"], one["moco.queue_video"])
    torch.testing.assert_close(two["moco.queue"][:16], one["moco.queue"][:16], rtol=1e-4, atol=1e-5)
    init = _load(runs, "one", BATCH, 0)["init"]
    assert not torch.allclose(one["moco.queue"][:16], init["moco.queue"][:16])  # this step wrote them


@pytest.mark.parametrize("scenario", [GROUP, BATCH, BETWEEN])
def test_ranks_hold_identical_parameters_and_queue(runs, scenario):
    r0, r1 = _load(runs, "two", scenario, 0), _load(runs, "two", scenario, 1)
    for key, value in r0["state"].items():
        if not _is_bn_statistic(key):  # BN running statistics stay per rank (no buffer sync per forward)
            assert torch.equal(r1["state"][key], value), key


def test_rank_zero_alone_writes_checkpoints_and_log(runs):
    r0, r1 = _load(runs, "two", GROUP, 0), _load(runs, "two", GROUP, 1)
    assert r1["saves"] == []
    assert len(r0["saves"]) == 2  # one checkpoint per epoch
    log = (runs / "two" / "group" / "work" / "train_log.jsonl").read_text().splitlines()
    assert len(log) == 2  # one line per epoch, not one per rank
    assert r0["log"] == r1["log"]  # every rank returns rank 0's log


def test_two_rank_run_killed_and_resumed_under_two_ranks_matches_uninterrupted(runs):
    assert "resuming from" in (runs / "launcher.out").read_text()
    for rank in (0, 1):
        straight, again = _load(runs, "two", GROUP, rank), _load(runs, "resume", GROUP, rank)
        assert len(again["saves"]) == (0 if rank else 1)  # the resumed run wrote the epoch-2 checkpoint only
        for key, value in straight["state"].items():
            assert torch.equal(again["state"][key], value), (rank, key)
    assert len((runs / "resume" / "group" / "work" / "train_log.jsonl").read_text().splitlines()) == 2


def test_finetune_on_two_ranks_matches_one_process(runs):
    """Same global batches (the one-process loader's), the uneven last batch weighted back to the global mean,
    test videos split over the ranks and gathered: the one-process model and results."""
    one, two = _load(runs, "one", FINETUNE, 0), _load(runs, "two", FINETUNE, 0)
    assert two["world"] == 2
    for key, value in one["state"].items():
        torch.testing.assert_close(two["state"][key], value, rtol=1e-4, atol=1e-6, msg=key)
    assert two["results"]["train_loss"] == pytest.approx(one["results"]["train_loss"], rel=1e-5)
    assert two["results"]["train_top1"] == one["results"]["train_top1"]
    test_one, test_two = one["results"]["test"], two["results"]["test"]
    assert test_two.keys() == test_one.keys()
    for key, value in test_one.items():
        assert test_two[key] == pytest.approx(value, rel=1e-6), key


@pytest.mark.parametrize("scenario", [FINETUNE, FINETUNE_BN])
def test_finetune_ranks_return_the_same_model_and_results(runs, scenario):
    r0, r1 = _load(runs, "two", scenario, 0), _load(runs, "two", scenario, 1)
    assert r1["results"] == r0["results"]  # every rank returns the same (gathered) results
    for key, value in r0["state"].items():  # BN running statistics included: rank 0's go to all before the test
        assert torch.equal(r1["state"][key], value), key


@pytest.mark.slow  # about 25 s on 2 shared cores: torchrun's agent and each worker import torch anew
def test_real_torchrun_gives_the_forked_ranks_result(runs, tmp_path):
    """The fast tests fork the ranks with torchrun's environment; torchrun itself must give the same weights."""
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(_script(tmp_path)), str(tmp_path), GROUP], env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for rank in (0, 1):
        forked, launched = _load(runs, "two", GROUP, rank), _load(tmp_path, ".", GROUP, rank)
        assert launched["world"] == 2
        for key, value in forked["state"].items():
            assert torch.equal(launched["state"][key], value), (rank, key)


# ------------------------------------------------------------------------------------ one-process helpers
def test_shards_are_disjoint_contiguous_blocks_of_each_global_batch():
    order = torch.randperm(23, generator=torch.Generator().manual_seed(0)).tolist()
    shards = [ddp.shard_indices(order, 8, r, 4) for r in range(4)]
    assert all(len(s) == 2 * 2 for s in shards)  # 2 full global batches of 8, 2 clips per rank each
    for step in range(2):
        gathered = [i for s in shards for i in s[2 * step: 2 * step + 2]]
        assert gathered == order[8 * step: 8 * step + 8]  # rank order = one-process batch order
    assert ddp.shard_indices(order, 8, 0, 1) == order[:16]
    with pytest.raises(ConfigError, match="does not split evenly over 3"):
        ddp.shard_indices(order, 8, 0, 3)


def test_linear_lr_scaling_is_off_by_default_and_scales_with_global_batch():
    plain = TrainConfig(lr=0.1, batch_size=64, warmup_epochs=0, epochs=10)
    assert lr_at(plain, 0.0) == pytest.approx(0.1)
    scaled = TrainConfig.from_dict({"lr": 0.1, "batch_size": 64, "warmup_epochs": 0, "epochs": 10,
                                    "lr_scaling_base_batch": 256})
    assert lr_at(scaled, 0.0) == pytest.approx(0.1 * 64 / 256)
    assert lr_at(scaled, 5.0) == pytest.approx(lr_at(plain, 5.0) * 64 / 256)
    for bad in (0, -8, 2.5, True):
        with pytest.raises(ConfigError, match="lr_scaling_base_batch"):
            TrainConfig.from_dict({"lr_scaling_base_batch": bad})


def test_rank_zero_keeps_the_one_process_seed_and_ranks_get_distinct_streams():
    assert step_seed(3, 2, 1, rank=0) == step_seed(3, 2, 1)
    seeds = {step_seed(3, 2, 1, rank=r) for r in range(64)}
    assert len(seeds) == 64 and all(0 <= s < 2**63 for s in seeds)


def test_helpers_are_identities_on_one_process():
    assert not ddp.is_distributed() and ddp.rank() == 0 and ddp.world_size() == 1 and ddp.is_main_process()
    x = torch.arange(6.0)
    assert ddp.concat_all_gather(x) is x and ddp.broadcast_(x) is x
    assert ddp.mean_over_ranks([1.5, 2.0]) == [1.5, 2.0] and ddp.any_rank(True) and not ddp.any_rank(False)
    ddp.barrier()


def test_launcher_environment_is_validated(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="RANK=2 must be below WORLD_SIZE=2"):
        ddp.launcher_world()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ConfigError, match="RANK='one' must be an integer"):
        ddp.launcher_world()
