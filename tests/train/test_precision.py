"""Mixed precision and memory layout (scenebias.train.precision) in the training loop and fine-tuning: "auto" on a
CPU is plain fp32 and contiguous (bit-identical to forcing fp32); forcing bf16 on a CPU runs MoCo / MoCo+FAME steps
under autocast (bf16 activations, fp32 parameters and loss, finite); forcing channels_last puts the model and the
clips in channels_last_3d; colour augmentation stays fp32 inside the autocast region; bad values are config errors."""
import math

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from scenebias.data.transforms import colour_augment, normalize
from scenebias.errors import ConfigError
from scenebias.evaluate.finetune import FinetuneConfig, finetune
from scenebias.models.backbones import build_backbone
from scenebias.plugins import get_method
from scenebias.train import precision as amp
from scenebias.train.loop import TrainConfig, fingerprint, train

CL3D = torch.channels_last_3d


class Pairs(Dataset):
    def __init__(self, n: int = 16) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        views = torch.rand(2, 3, 4, 16, 16, generator=g)
        return {"views": views, "clip": views[0], "label": i % 3, "index": i}


class Singles(Dataset):
    """Single-mode training items and test-mode items whose brightness encodes the class."""

    def __init__(self, n: int, mode: str) -> None:
        self.n, self.mode = n, mode

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        clip = (0.2 + 0.3 * (i % 3) + 0.1 * torch.rand(3, 4, 16, 16, generator=g)).clamp(0, 1)
        return {"clip": clip, "label": i % 3, "index": i} if self.mode == "single" else \
            {"clips": clip[None].repeat(2, 1, 1, 1, 1), "label": i % 3, "index": i}


class Probe:
    """Forward hooks on the first Conv3d: the dtype of its output, the layout of its input and weight."""

    def __init__(self, module: nn.Module) -> None:
        conv = next(m for m in module.modules() if isinstance(m, nn.Conv3d))
        self.out_dtypes: set[torch.dtype] = set()
        self.input_cl: set[bool] = set()
        self.weight_cl: set[bool] = set()
        # a plain function, not a bound method: fine-tuning deep-copies the backbone, and a copied bound method
        # would fill a copy of this probe
        conv.register_forward_hook(lambda m, i, o: self._hook(m, i, o))

    def _hook(self, conv, inputs, output) -> None:
        self.out_dtypes.add(output.dtype)
        self.input_cl.add(inputs[0].is_contiguous(memory_format=CL3D) and not inputs[0].is_contiguous())
        self.weight_cl.add(conv.weight.is_contiguous(memory_format=CL3D) and not conv.weight.is_contiguous())


def suite_augment(g: torch.Generator):
    return lambda x: normalize(colour_augment(x, g))


def _train(tmp_path, name: str, method: str = "moco+fame", augment=suite_augment, **cfg):
    torch.manual_seed(0)
    objective = get_method(method).build(build_backbone("tiny3d", width=4), 3, {"queue_size": 16})
    probe = Probe(objective.backbone)
    log = train(objective, Pairs(), TrainConfig(epochs=1, batch_size=8, warmup_epochs=0, **cfg), tmp_path / name,
                seed=0, augment_factory=augment, progress=False)
    return objective, probe, log


# ---------------------------------------------------------------------------------------------- resolution
def test_auto_is_bf16_and_channels_last_on_cuda_and_fp32_contiguous_on_cpu(monkeypatch):
    assert amp.resolve_precision("auto", "cpu") == "fp32" and amp.resolve_channels_last("auto", "cpu") is False
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp.resolve_precision("auto", "cuda") == "bf16" and amp.resolve_precision("auto", "cuda:1") == "bf16"
    assert amp.resolve_channels_last("auto", "cuda:0") is True
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a V100: fp32
    assert amp.resolve_precision("auto", "cuda") == "fp32"
    assert amp.resolve_precision("bf16", "cpu") == "bf16" and amp.resolve_precision("fp32", "cuda") == "fp32"
    assert amp.resolve_channels_last(True, "cpu") is True and amp.resolve_channels_last(False, "cuda") is False
    assert TrainConfig().precision == "auto" and FinetuneConfig().channels_last == "auto"


@pytest.mark.parametrize("key,value", [("precision", "fp16"), ("precision", True), ("channels_last", "yes"),
                                       ("channels_last", 1)])
def test_bad_values_are_config_errors_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"pretrain\.{key}"):
        TrainConfig.from_dict({key: value})
    with pytest.raises(ConfigError, match=rf"FinetuneConfig\.{key}"):
        FinetuneConfig.from_dict({key: value})


def test_clips_channels_last_keeps_values_and_lays_out_every_view():
    views = torch.rand(2, 3, 3, 4, 5, 6)  # (B, V, C, T, H, W)
    batch = amp.batch_channels_last({"views": views, "index": torch.arange(2), "name": "x"})
    assert torch.equal(batch["views"], views) and batch["name"] == "x" and batch["index"].is_contiguous()
    for v in range(3):
        view = batch["views"][:, v]
        assert view.is_contiguous(memory_format=CL3D) and not view.is_contiguous()
    assert amp.clips_channels_last(views[:, 0]).is_contiguous(memory_format=CL3D)


def test_channels_last_is_left_out_of_the_checkpoint_fingerprint_and_precision_is_not():
    objective = get_method("moco").build(build_backbone("tiny3d", width=4), 3, {"queue_size": 16})
    prints = {(p, c): fingerprint(objective, Pairs(), TrainConfig(precision=p, channels_last=c), 0)
              for p in ("auto", "bf16") for c in ("auto", True)}
    assert prints[("auto", "auto")] == prints[("auto", True)]
    assert prints[("auto", "auto")] != prints[("bf16", "auto")]


# ---------------------------------------------------------------------------------------------- training loop
def test_auto_on_cpu_is_bit_identical_to_fp32_contiguous(tmp_path):
    auto, probe, log_auto = _train(tmp_path, "auto")
    fp32, _, log_fp32 = _train(tmp_path, "fp32", precision="fp32", channels_last=False)
    assert probe.out_dtypes == {torch.float32} and probe.input_cl == {False} and probe.weight_cl == {False}
    for (k, a), (_, b) in zip(auto.state_dict().items(), fp32.state_dict().items()):
        assert torch.equal(a, b), k
    strip = lambda log: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in log]  # noqa: E731
    assert strip(log_auto) == strip(log_fp32)


@pytest.mark.parametrize("method", ["moco", "moco+fame"])
def test_forced_bf16_and_channels_last_on_cpu_train_with_finite_loss(tmp_path, method):
    objective, probe, log = _train(tmp_path, method, method=method, precision="bf16", channels_last=True)
    assert probe.out_dtypes == {torch.bfloat16}  # autocast was active in the forward pass
    assert probe.input_cl == {True} and probe.weight_cl == {True}  # model and clips in channels_last_3d
    assert log and all(math.isfinite(r["loss"]) for r in log)
    params = list(objective.parameters())
    assert all(p.dtype == torch.float32 for p in params)  # fp32 master weights: autocast casts on the fly
    assert all(torch.isfinite(p).all() for p in params)
    assert "make_views" not in vars(objective)  # the fp32 view builder was only lent for the run
    conv = next(m for m in objective.backbone.modules() if isinstance(m, nn.Conv3d))
    assert conv.weight.is_contiguous(memory_format=CL3D)
    fp32, _, _ = _train(tmp_path, method + "-fp32", method=method, precision="fp32")
    assert not torch.equal(conv.weight, next(m for m in fp32.backbone.modules()
                                             if isinstance(m, nn.Conv3d)).weight)  # bf16 did change the numbers


def test_view_builders_run_outside_autocast_while_training_in_bf16():
    """FAME's masks come from convolutions (blurred seed and posterior maps): under bf16 autocast some mask pixels
    flip; the loop runs make_views outside autocast, so the views are the fp32 ones."""
    torch.manual_seed(0)
    objective = get_method("moco+fame").build(build_backbone("tiny3d", width=4), 3, {"queue_size": 16})
    g = torch.Generator().manual_seed(0)
    views = torch.rand(8, 2, 3, 1, 32, 32, generator=g).repeat(1, 1, 1, 6, 1, 1)  # static scenes ...
    for t in range(6):  # ... with a moving coloured square
        views[:, :, :, t, 8:20, 2 + 3 * t: 14 + 3 * t] = torch.rand(8, 2, 3, 1, 1, generator=g)
    batch = {"views": views, "index": torch.arange(8)}
    fp32 = objective.make_views(batch, torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bare = objective.make_views(batch, torch.Generator().manual_seed(1))
        with amp.fp32_view_builder(objective, "cpu"):
            kept = objective.make_views(batch, torch.Generator().manual_seed(1))
    assert not torch.equal(bare[0], fp32[0])  # what the wrapper prevents
    assert all(torch.equal(a, b) for a, b in zip(kept, fp32))
    assert "make_views" not in vars(objective)  # the class's method is back


def test_the_loop_calls_the_view_builder_with_autocast_off_and_the_encoder_with_it_on(tmp_path, monkeypatch):
    torch.manual_seed(0)
    objective = get_method("moco+fame").build(build_backbone("tiny3d", width=4), 3, {"queue_size": 16})
    seen, make_views = [], type(objective).make_views

    def spy(self, batch, generator):
        seen.append(torch.is_autocast_enabled("cpu"))
        return make_views(self, batch, generator)

    monkeypatch.setattr(type(objective), "make_views", spy)
    probe = Probe(objective.backbone)
    train(objective, Pairs(), TrainConfig(epochs=1, batch_size=8, precision="bf16"), tmp_path, seed=0,
          augment_factory=suite_augment, progress=False)
    assert seen == [False, False] and probe.out_dtypes == {torch.bfloat16}


def test_colour_augmentation_stays_fp32_inside_autocast():
    x = torch.rand(4, 3, 4, 16, 16)
    plain = colour_augment(x, torch.Generator().manual_seed(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = colour_augment(x, torch.Generator().manual_seed(3))
    assert inside.dtype == torch.float32 and torch.equal(inside, plain)


# ---------------------------------------------------------------------------------------------- fine-tuning
def _finetune(**cfg):
    torch.manual_seed(0)
    backbone = build_backbone("tiny3d", width=4)
    probe = Probe(backbone)  # deep-copied with the backbone: the copy's hook fills this probe
    result = finetune(backbone, Singles(12, "single"), {"test": Singles(6, "test")}, 3,
                      FinetuneConfig(epochs=2, batch_size=4, dropout=0.0, progress=False, **cfg), "cpu", seed=0,
                      return_model=True)
    return result, probe


def test_finetune_auto_on_cpu_is_fp32_and_forced_bf16_channels_last_runs():
    auto, probe_auto = _finetune()
    fp32, _ = _finetune(precision="fp32", channels_last=False)
    assert probe_auto.out_dtypes == {torch.float32} and probe_auto.input_cl == {False}
    assert auto["train_loss"] == fp32["train_loss"] and auto["test"]["top1"] == fp32["test"]["top1"]
    for a, b in zip(auto["model"].state_dict().values(), fp32["model"].state_dict().values()):
        assert torch.equal(a, b)
    bf16, probe = _finetune(precision="bf16", channels_last=True)
    assert probe.out_dtypes == {torch.bfloat16} and probe.weight_cl == {True}
    assert True in probe.input_cl  # the training clips (the test clips are laid out by the first convolution)
    # bf16 autocast changes the arithmetic, not the computation: like fp32 (0.79), two epochs bring the loss
    # below the chance cross-entropy ln 3 = 1.10 (bf16 reaches 0.63 here; rounding makes the paths differ)
    assert fp32["train_loss"] < math.log(3) and bf16["train_loss"] < math.log(3)
    test = bf16["test"]
    assert test["n"] == 6 and test["top1"] == pytest.approx(sum(test["correct"]) / 6)
    assert all(p.dtype == torch.float32 for p in bf16["model"].parameters())


def test_fp32_on_cuda_turns_tf32_off_and_the_cpu_leaves_it():
    """A resolved fp32 on CUDA is IEEE fp32 (no TF32 convolutions); resolving for the CPU changes nothing."""
    import torch

    from scenebias.train import precision as amp

    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    saved = conv.fp32_precision, matmul.fp32_precision
    try:
        conv.fp32_precision, matmul.fp32_precision = "tf32", "tf32"
        assert amp.resolve_precision("fp32", "cpu") == "fp32"
        assert conv.fp32_precision == "tf32"
        assert amp.resolve_precision("fp32", "cuda") == "fp32"
        assert (conv.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
    finally:
        conv.fp32_precision, matmul.fp32_precision = saved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (bf16 on a CPU is refused: check_device)")
@pytest.mark.parametrize("channels, frames, side", [(16, 2, 4), (64, 2, 7), (256, 2, 7), (512, 2, 4), (64, 4, 14)])
def test_cuda_bf16_conv3d_weight_gradients_match_fp32_where_the_cpu_gets_them_wrong(channels, frames, side):
    """The shapes where this PyTorch's CPU bf16 conv3d weight gradient is wrong (a 3-frame kernel over 2 frames: the
    last stage of tiny3d at 8 frames, of r3d_18 / r2plus1d_18 at 16; docs/methods.md, "Precision"): under CUDA's
    bf16 autocast, the path "auto" takes there, they must agree with fp32 to bf16's rounding."""
    torch.manual_seed(0)
    conv = nn.Conv3d(channels, channels, 3, padding=1, bias=False).cuda()
    x = torch.randn(8, channels, frames, side, side, device="cuda")
    grads = {}
    for precision in ("fp32", "bf16"):
        conv.zero_grad()
        with amp.autocast(precision, "cuda"):
            y = conv(x)
        y.float().square().mean().backward()
        grads[precision] = conv.weight.grad.double()
    error = (grads["bf16"] - grads["fp32"]).abs().max() / grads["fp32"].abs().max()
    assert error < 0.05, f"bf16 weight gradient off by {float(error):.3g} of its scale"
