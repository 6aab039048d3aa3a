"""Config validation and the CLI: bad values are named, registries are listed one per line."""
import subprocess
import sys

import pytest
import torch

from scenebias.cli import main
from scenebias.errors import ConfigError, DataError, UnknownNameError
from scenebias.models.backbones import build_backbone
from scenebias.models.files import load_model
from scenebias.plan import load_config


@pytest.mark.parametrize("override, named", [
    ({"pretrain": {"lr": -1}}, "pretrain/lr"),
    ({"pretrian": {}}, "pretrian"),
    ({"backbone": {"name": "resnet9000"}}, "resnet9000"),
    ({"runs": {"x": {"method": "nope"}}}, "runs.x.method"),
    ({"runs": {"moco": {"method": "moco", "options": {"qsize": 3}}}}, "qsize"),
    ({"runs": {"moco": {"method": "moco", "options": {"temperature": "hot"}}}}, "temperature"),
    ({"evaluate": {"protocols": ["telepathy"]}}, "telepathy"),
    ({"seeds": []}, "seeds"),
    ({"backbone": {"name": "tiny3d", "options": {"widht": 8}}}, "widht.*it takes: width"),
])
def test_invalid_config_is_named(override, named):
    with pytest.raises(ConfigError, match=named.replace("/", ".")):
        load_config("smoke", overrides=override)


def test_unknown_preset_lists_known():
    with pytest.raises(ConfigError, match="smoke"):
        load_config("no-such-preset")


def _leaves(tree, path=()):
    """(path, value) of every non-dict value of a nested mapping."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, path + (key,))
        else:
            yield path + (key,), value


def _at(cfg, path):
    for key in path:
        cfg = cfg[key]
    return cfg


def test_presets_validate():
    """Each preset loads, every value its file sets is the loaded value, and everything it does not set comes
    from config/config.yaml (`default` sets nothing but its name)."""
    import yaml

    from scenebias.provenance import REPO_ROOT

    base = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    for preset in ("smoke", "default"):
        cfg = load_config(preset)
        own = yaml.safe_load((REPO_ROOT / "config" / "presets" / f"{preset}.yaml").read_text())
        assert own["preset"] == preset
        for path, value in _leaves(own):
            assert _at(cfg, path) == value, (preset, path)
        set_by_preset = {path for path, _ in _leaves(own)}
        inherited = [(path, value) for path, value in _leaves(base)
                     if not any(path[:len(p)] == p or p[:len(path)] == path for p in set_by_preset)]
        assert len(inherited) > 20
        for path, value in inherited:
            if path[:2] == ("data", "evaluation_sets") and path[2] not in cfg["data"]["evaluation_sets"]:
                continue  # planning keeps only the evaluation sets the preset's tables read
            assert _at(cfg, path) == value, (preset, path)
    assert load_config("smoke")["seeds"] != load_config("default")["seeds"]  # the presets really differ


def test_unknown_backbone_error():
    with pytest.raises(UnknownNameError, match="expected one of: .*tiny3d"):
        build_backbone("c4d")


def test_cli_lists_registries(capsys):
    assert main(["methods"]) == 0
    methods = capsys.readouterr().out.split()
    assert {"moco", "random_init", "supervised"} <= set(methods)
    assert main(["backbones"]) == 0
    assert capsys.readouterr().out.split() == ["c3d", "i3d", "i3d_r50", "r2plus1d_18", "r3d_18", "tiny3d"]


def test_cli_reports_bad_config_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pretrain: {epochs: -3}\n")
    proc = subprocess.run([sys.executable, "-m", "scenebias.cli", "pretrain", "--preset", "smoke", "--config",
                           str(bad), "--run", "moco"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "pretrain/epochs" in proc.stderr.replace(".", "/") and "Traceback" not in proc.stderr


def test_model_file_errors(tmp_path):
    with pytest.raises(DataError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.pt"):
        load_model(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(DataError, match="scenebias-model/1"):
        load_model(other)


def test_benchmark_dataset_table_matches_generator():
    import yaml

    from scenebias.data.synthetic import FLAVOUR_FORMAT
    from scenebias.provenance import REPO_ROOT

    table = yaml.safe_load((REPO_ROOT / "benchmarks" / "datasets.yaml").read_text())
    assert {k: v["format"] for k, v in table.items()} == FLAVOUR_FORMAT


def test_manifest_without_real_roots_is_an_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["manifest", "--preset", "smoke", "--out", str(out)]) == 2
    assert "no data.real roots" in capsys.readouterr().err and not out.exists()


def test_evaluation_options_unset_leave_presets_as_they_were():
    """The evaluation options the paper preset sets have no schema default, so the default and smoke presets'
    evaluate sections (hashed into every evaluation job and its provenance) are what they were without them."""
    for preset in ("default", "smoke"):
        evaluate = load_config(preset)["evaluate"]
        assert not {"clip_average", "num_workers"} & set(evaluate) and set(evaluate["retrieval"]) == {"ks", "centred"}
        assert not {"views", "normalize_features"} & set(evaluate["linear"]) and "colour" not in evaluate["finetune"]
    paper = load_config("paper")["evaluate"]
    assert paper["clip_average"] == "by_backbone" and paper["num_workers"] == 8
    assert paper["linear"]["views"] == "per_epoch" and paper["linear"]["normalize_features"] is False
    assert paper["finetune"]["batch_size"] == 128 and paper["finetune"]["lr"] == 0.025
    assert paper["finetune"]["colour"] == {"p_jitter": 0.8, "p_gray": 0.2}
    assert paper["retrieval"] == {"ks": [1, 5, 10, 20, 50], "centred": "both", "levels": ["video", "clip"],
                                  "clip_normalize": True, "clip_level_pooling": "max", "input_stats": "imagenet"}
    with pytest.raises(ConfigError, match="clip_average"):
        load_config("smoke", overrides={"evaluate": {"clip_average": "median"}})


def test_the_old_profile_option_names_its_new_name(capsys):
    """Config presets were called profiles, like Snakemake's execution profiles (profiles/): the old option stops
    with the new one instead of argparse's bare "unrecognized arguments"."""
    assert main(["generate", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "--preset smoke" in err and "execution profile" in err
