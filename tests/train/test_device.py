"""Models and their inputs on one device (scenebias.device), checked without a GPU.

CI has no second device, so a model left on the CPU while its clips move to CUDA would go unnoticed. The
`shadow_device` below stands in for one: inside it, tensors and modules moved to the "meta" device stay physically on
the CPU but are tracked as living on a second device, and every operation follows CUDA's rules — an op whose tensors
sit on both devices raises (a CPU scalar excepted), `.numpy()` of a device tensor raises, `.cpu()` copies back and
`.device` reports "meta". Every protocol then runs for real with device="meta" and a backbone built on the CPU.
"""
from __future__ import annotations

import contextlib
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np
import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.data import Dataset

from scenebias.analysis.cam import activation_map, model_cams
from scenebias.data.transforms import normalize
from scenebias.device import pin_memory, to_device
from scenebias.evaluate import classifier as classifier_module
from scenebias.evaluate import finetune as finetune_module
from scenebias.evaluate import registry
from scenebias.evaluate import protocol
from scenebias.evaluate.features import extract_features
from scenebias.evaluate.finetune import FinetuneConfig, finetune
from scenebias.evaluate.linear import LinearProbeConfig, linear_probe
from scenebias.evaluate.retrieval import RetrievalConfig, retrieval_levels
from scenebias.models.backbones import build_backbone
from scenebias.plugins import get_method
from scenebias.train.loop import TrainConfig, train

SHADOW = torch.device("meta")
DEVICE_GETTER = torch.Tensor.device.__get__  # what a mode sees for `tensor.device`


class Placement:
    """Which storages live on the shadow device. They are kept alive for the whole test session, so no CPU
    tensor ever reuses a shadow address and a tensor cached on the shadow device (a normalisation constant)
    stays there across tests."""

    kept: dict[int, torch.UntypedStorage] = {}

    def on_shadow(self, t: torch.Tensor) -> bool:
        return t.numel() > 0 and t.untyped_storage().data_ptr() in self.kept

    def place(self, out: Any) -> Any:
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.numel() > 0:
                storage = t.untyped_storage()
                self.kept[storage.data_ptr()] = storage
        return out


def _is_shadow(device: Any) -> bool:
    return device is not None and torch.device(device) == SHADOW


class _Ops(TorchDispatchMode):
    """Every aten op: moves to the shadow device happen on the CPU and are tagged; mixed devices raise."""

    def __init__(self, placement: Placement) -> None:
        super().__init__()
        self.placement = placement

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if kwargs.get("device") is not None:  # a factory or a copy to a named device
            moved = _is_shadow(kwargs["device"])
            if moved:
                kwargs["device"] = torch.device("cpu")
            out = func(*args, **kwargs)
            return self.placement.place(out) if moved else out
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor) and t.numel() > 0]
        shadow = [self.placement.on_shadow(t) for t in tensors]
        if func is torch.ops.aten.copy_.default:  # copies cross devices; the target stays where it is
            return func(*args, **kwargs)
        if any(shadow) and any(not s and t.dim() > 0 for s, t in zip(shadow, tensors)):
            raise RuntimeError(f"{func}: expected all tensors to be on the same device, but found at least two "
                               f"devices, meta (the shadow device) and cpu")
        out = func(*args, **kwargs)
        return self.placement.place(out) if any(shadow) else out


class _Api(TorchFunctionMode):
    """What never reaches aten: `.device`, `.cpu()`, `.to("cpu")`, `.numpy()` and factories such as torch.tensor."""

    def __init__(self, placement: Placement) -> None:
        super().__init__()
        self.placement = placement

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        me = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if me is not None and self.placement.on_shadow(me):
            if func == DEVICE_GETTER:
                return SHADOW
            if func is torch.Tensor.numpy:
                raise TypeError("can't convert a meta (shadow device) tensor to numpy; use Tensor.cpu() first")
            if func is torch.Tensor.cpu:
                return self._copy_out(me)
            if func is torch.Tensor.to:
                device, dtype, *_ = torch._C._nn._parse_to(*args[1:], **kwargs)
                if device is not None and device.type == "cpu":
                    copy = self._copy_out(me)
                    return copy if dtype is None else copy.to(dtype)
        if _is_shadow(kwargs.get("device")):
            kwargs["device"] = torch.device("cpu")
            return self.placement.place(func(*args, **kwargs))
        return func(*args, **kwargs)

    @staticmethod
    def _copy_out(t: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(t, device="cpu")
        out.copy_(t)
        return out.requires_grad_(t.requires_grad) if t.is_leaf else out


@contextlib.contextmanager
def shadow_device() -> Iterator[Placement]:
    placement = Placement()
    with _Api(placement), _Ops(placement):
        yield placement


# --------------------------------------------------------------------------------------------- fixtures
class Clips(Dataset):
    """Brightness encodes the class; single-mode ("clip") or test-mode ("clips", 2 per video) items."""

    def __init__(self, n: int, mode: str, classes: int = 3) -> None:
        self.n, self.mode, self.classes = n, mode, classes

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        clip = (0.2 + 0.3 * (i % self.classes) + 0.1 * torch.rand(3, 4, 16, 16, generator=g)).clamp(0, 1)
        if self.mode == "single":
            return {"clip": clip, "label": i % self.classes, "index": i}
        return {"clips": torch.stack([clip, clip.flip(-1)]), "label": i % self.classes, "index": i}


class Pairs(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        views = torch.rand(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(i))
        return {"views": views, "clip": views[0], "label": i % 3, "index": i}


def cpu_backbone() -> nn.Module:
    torch.manual_seed(0)
    return build_backbone("tiny3d", width=4)


def on_shadow(placement: Placement, module: nn.Module) -> bool:
    return all(placement.on_shadow(p) for p in module.parameters())


TESTS = {"test": Clips(3, "test")}


# ------------------------------------------------------------------------------------------ the harness
def test_the_shadow_device_catches_a_model_left_on_the_cpu():
    """The harness itself: CPU weights on shadow clips raise, as CUDA would; moved weights run."""
    backbone = cpu_backbone()
    with shadow_device() as placement:
        clips = to_device(torch.rand(2, 3, 4, 16, 16), SHADOW)
        assert clips.device == SHADOW and placement.on_shadow(clips)
        with pytest.raises(RuntimeError, match="same device"):
            backbone(clips)
        out = to_device(backbone, SHADOW)(clips)
        assert placement.on_shadow(out) and not placement.on_shadow(out.detach().cpu())
        with pytest.raises(TypeError, match="numpy"):
            out.detach().numpy()


# ---------------------------------------------------------------------------------- every protocol
def test_feature_extraction_moves_the_backbone_to_its_clips():
    backbone = cpu_backbone()
    with shadow_device() as placement:
        feats, labels = extract_features(backbone, Clips(4, "test"), 2, SHADOW, "per_clip", pooling="max")
        assert on_shadow(placement, backbone)
    assert feats.shape == (4, 2, backbone.feature_dim) and labels.tolist() == [0, 1, 2, 0]


def test_linear_probe_runs_on_the_device():
    with shadow_device():
        results = linear_probe(cpu_backbone(), Clips(6, "single"), TESTS, 3, LinearProbeConfig(epochs=2), SHADOW)
    assert results["test"]["n"] == 3 and 0 <= results["train_top1"] <= 1


def test_retrieval_runs_on_the_device():
    cfg = RetrievalConfig(levels=("video", "clip"), clip_normalize=True, clip_level_pooling="max")
    with shadow_device():
        results = retrieval_levels(cpu_backbone(), Clips(6, "test"), TESTS, cfg, SHADOW)
    assert set(results) == {"centred", "plain", "clip_centred", "clip_plain"}


def test_multi_clip_prediction_moves_the_classifier_to_its_clips():
    """The classifier protocol's path: a method's clips -> logits module, built on the CPU."""
    net = get_method("supervised").build(cpu_backbone(), 3, None).classifier()
    with shadow_device() as placement:
        probs, labels = protocol.multi_clip_predict(net, Clips(3, "test"), 2, SHADOW)
        assert on_shadow(placement, net)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_finetuning_runs_on_the_device():
    cfg = FinetuneConfig(epochs=1, batch_size=3, progress=False)
    with shadow_device():
        results = finetune(cpu_backbone(), Clips(6, "single"), TESTS, 3, cfg, SHADOW)
    assert results["test"]["n"] == 3 and np.isfinite(results["train_loss"])


def test_pretraining_moves_the_objective_and_every_batch(tmp_path):
    objective = get_method("moco").build(cpu_backbone(), 3, {"queue_size": 8})
    cfg = TrainConfig(epochs=1, batch_size=4, warmup_epochs=0)
    with shadow_device() as placement:
        log = train(objective, Pairs(), cfg, tmp_path, seed=0, augment_factory=lambda g: normalize,
                    device="meta", progress=False)
        assert on_shadow(placement, objective)
    assert len(log) == 1 and np.isfinite(log[0]["loss"])


@pytest.mark.parametrize("cam", ["energy", "gradcam"])
def test_activation_maps_run_on_their_clips_device(cam):
    backbone = cpu_backbone()
    classifier = get_method("supervised").build(backbone, 3, None).classifier() if cam == "gradcam" else None
    with shadow_device():
        maps = model_cams(backbone, torch.rand(3, 3, 4, 16, 16), classifier, SHADOW)
        one = activation_map(backbone, to_device(torch.rand(3, 4, 16, 16), SHADOW), classifier)
        assert one.device == SHADOW
    assert maps.shape == (3, 4, 16, 16) and maps.device.type == "cpu"


# -------------------------------------------------------------------------------------------- the helper
def test_to_device_places_modules_tensors_and_batches():
    module = nn.Linear(2, 2)
    assert to_device(module, "cpu") is module
    batch = to_device({"views": torch.rand(2, 3), "label": torch.tensor([1, 2]), "video": ["a", "b"]}, "cpu")
    assert batch["label"].dtype == torch.long and batch["video"] == ["a", "b"]
    assert to_device(torch.ones(2, dtype=torch.uint8), "cpu", torch.float32).dtype == torch.float32
    with pytest.raises(TypeError, match="dtype"):
        to_device(batch, "cpu", torch.float32)
    with pytest.raises(TypeError, match="str"):
        to_device("clips", "cpu")
    assert pin_memory("cuda") and pin_memory("cuda:1") and not pin_memory("cpu")


# ------------------------------------------------------------------------- the evaluators of a job
def _evaluation_inputs(evaluate: dict[str, Any], monkeypatch, device: str = "cpu") -> registry.EvaluationInputs:
    """A job's inputs as `stages.evaluate` builds them, with the fake clips above and a supervised model file's
    contents (backbone and head state, as `save_model` writes them)."""
    classes = SimpleNamespace(class_names=["a", "b", "c"], records=[])
    monkeypatch.setattr(classifier_module, "split", lambda cfg, flavour, subset: classes)
    monkeypatch.setattr(registry, "clip_dataset", lambda cfg, records, mode, *a, **k: Clips(6, mode))
    objective = get_method("supervised").build(cpu_backbone(), 3, None)
    head = {k: v for k, v in objective.classifier().state_dict().items() if not k.startswith("0.")}
    model = {"backbone_module": objective.backbone, "backbone": objective.backbone.state_dict(), "head": head,
             "method": "supervised", "num_classes": 3, "options": None, "static": False}
    cfg = {"evaluate": {"batch_size": 2, **evaluate}}
    return registry.EvaluationInputs(cfg, "supervised", {"flavour": "ucf101"}, 0, model, device, "ucf101", classes,
                                   {"test": Clips(3, "test")}, "softmax")


@pytest.fixture
def loader_workers(monkeypatch) -> list[tuple[int, bool]]:
    """(num_workers, pin) of every evaluation loader made; the loaders themselves load in this process."""
    made: list[tuple[int, bool]] = []
    real = protocol.make_loader

    def spy(dataset, batch_size, *, num_workers=0, pin=False, **kw):
        made.append((num_workers, pin))
        return real(dataset, batch_size, **kw)

    monkeypatch.setattr(protocol, "make_loader", spy)
    monkeypatch.setattr(finetune_module, "make_loader", spy)
    return made


SECTIONS = {"linear": {"epochs": 1}, "finetune": {"epochs": 1, "batch_size": 3, "progress": False}, "retrieval": {}}


@pytest.mark.parametrize("name", list(registry.protocols()))
def test_every_evaluator_runs_on_the_device_with_the_configured_loader_workers(name, monkeypatch, loader_workers):
    inputs = _evaluation_inputs({"num_workers": 3, **SECTIONS}, monkeypatch, device="meta")
    with shadow_device():
        results = registry.protocols().get(name).evaluate(inputs)
    assert results and loader_workers and set(loader_workers) == {(3, False)}


def test_loader_workers_default_to_the_main_process_and_a_section_may_set_its_own(monkeypatch, loader_workers):
    registry.protocols().get("retrieval").evaluate(_evaluation_inputs(SECTIONS, monkeypatch))
    assert {w for w, _ in loader_workers} == {0}
    loader_workers.clear()
    own = {**SECTIONS, "linear": {"epochs": 1, "num_workers": 1}}
    registry.protocols().get("linear").evaluate(_evaluation_inputs({"num_workers": 3, **own}, monkeypatch))
    assert {w for w, _ in loader_workers} == {1}
