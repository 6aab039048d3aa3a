"""`register_method(..., parent=...)` and `register_preset` do not depend on the order plugin files are imported:
a method inherits its parent's options (parent's first, then its own), waiting until the parent is registered."""
import json
import subprocess
import sys

import pytest

from scenebias import plugins
from scenebias.errors import PluginError
from scenebias.registry import Registry
from scenebias.train.moco import MOCO_DEFAULTS, MOCO_VARIANTS


@pytest.fixture
def registry(monkeypatch):
    """A fresh, empty registry (the real one stays as loaded)."""
    fresh = Registry("method")
    monkeypatch.setattr(plugins, "METHODS", fresh)
    monkeypatch.setattr(plugins, "_PENDING", {})
    return fresh


class Base(plugins.TrainObjective):
    """Base."""


class Child(Base):
    """Child."""


class Stranger(plugins.TrainObjective):
    """Not a Base."""


def test_a_child_and_a_preset_registered_before_their_base_wait_for_it(registry):
    plugins.register_preset("child+pinned", "child", fixed={"b": "y"}, paper="p", description="pinned")
    plugins.register_method("child", parent="base", paper="p", defaults={"c": 3, "a": 10},
                            variants={"b": ["x", "y", "z"]})(Child)
    assert "child" not in registry and "child+pinned" not in registry
    plugins.register_method("base", paper="p", defaults={"a": 1, "b": "x"}, variants={"b": ["x", "y"]})(Base)
    child = registry.get("child")
    assert list(child.defaults.items()) == [("a", 10), ("b", "x"), ("c", 3)]  # parent's keys first, then its own
    assert child.variants == {"b": ["x", "y", "z"]} and child.objective is Child and child.description == "Child."
    pinned = registry.get("child+pinned")
    assert pinned.defaults == {"a": 10, "c": 3} and pinned.fixed == {"b": "y"} and pinned.objective is Child
    plugins._resolve_pending(strict=True)  # nothing left waiting


def test_a_missing_parent_is_an_error_naming_the_method(registry):
    plugins.register_method("orphan", parent="nowhere", paper="p", defaults={})(Child)
    with pytest.raises(PluginError, match="'orphan' \\(on 'nowhere'\\)"):
        plugins._resolve_pending(strict=True)


def test_the_class_must_extend_the_parents_and_names_are_unique(registry):
    plugins.register_method("base", paper="p", defaults={"a": 1})(Base)
    with pytest.raises(PluginError, match="Stranger does not subclass Base"):
        plugins.register_method("stranger", parent="base", paper="p")(Stranger)
    with pytest.raises(ValueError, match="registered twice"):
        plugins.register_method("base", paper="p", defaults={})(Base)
    plugins.register_preset("late", "unknown", fixed={}, paper="p", description="d")
    with pytest.raises(ValueError, match="registered twice"):
        plugins.register_method("late", paper="p", defaults={})(Base)


def test_moco_based_methods_take_mocos_options_first():
    registry = plugins.load_methods()
    for name in ("moco+be", "moco+fame", "dsm", "moco+mixup", "moco+cutmix"):
        spec = registry.get(name)
        assert list(spec.defaults)[:len(MOCO_DEFAULTS)] == list(MOCO_DEFAULTS), name
        assert {k: spec.defaults[k] for k in MOCO_DEFAULTS} == MOCO_DEFAULTS, name
        assert spec.variants["enqueue"] == MOCO_VARIANTS["enqueue"], name


_DUMP = """
import json, sys
from scenebias.plugins import load_methods
registry = load_methods()
print(json.dumps({n: [list(s.defaults.items()), list(s.variants.items()), list(s.fixed.items()), s.paper,
                      s.description, s.objective.__qualname__] for n in registry for s in [registry.get(n)]}))
"""


def test_the_registry_does_not_depend_on_the_import_order():
    reverse = ("import scenebias_methods.mix, scenebias_methods.dsm, scenebias_methods.be, scenebias_methods.fame, "
               "scenebias_methods.moco\n")  # presets and children first
    specs = [json.loads(subprocess.run([sys.executable, "-c", first + _DUMP], capture_output=True, text=True,
                                       check=True).stdout) for first in ("", reverse)]
    assert specs[0] == specs[1] and "moco+mixup" in specs[0]
