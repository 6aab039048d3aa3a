"""The `classifier` protocol: a run trained with labels (supervised, the calibration rows) tested with its own
classifier head, on the classes it was trained on; no further training."""
from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..plugins import get_method
from ..resolve import split
from . import protocol as proto
from .registry import EvaluationInputs, register_protocol


@register_protocol("classifier")
def evaluate_classifier(e: EvaluationInputs) -> dict[str, Any]:
    model, run, spec = e.model, e.run, e.spec
    if model["head"] is None:
        raise ConfigError(f"runs.{run}.protocols: 'classifier' needs a method trained with labels, "
                          f"but {model['method']!r} has no classifier head")
    trained_on = split(e.cfg, spec["flavour"], "train").class_names
    if list(trained_on) != list(e.train_split.class_names):
        raise ConfigError(f"runs.{run}: the 'classifier' protocol tests on the classes it was trained on, but "
                          f"the run trained on {spec['flavour']!r} ({len(trained_on)} classes) and the downstream "
                          f"set {e.downstream!r} has other classes")
    classifier = get_method(model["method"]).build(e.backbone, model["num_classes"], model["options"])
    classifier.load_state_dict({"backbone." + k: v for k, v in model["backbone"].items()}
                               | {"head." + k.split(".", 1)[1]: v for k, v in model["head"].items()},
                               strict=True)
    net = classifier.classifier()  # multi_clip_predict puts it on the device and in eval mode
    ecfg = e.cfg["evaluate"]
    results = {}
    for name, ds in e.test_sets.items():
        probs, labels = proto.multi_clip_predict(net, ds, ecfg["batch_size"], e.device, proto.loader_workers(ecfg),
                                                 clip_average=e.clip_average)
        results[name] = proto.classification_metrics(probs, labels, e.num_classes)
    return results
