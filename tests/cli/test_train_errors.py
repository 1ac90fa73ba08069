"""``molgraph train`` errors as one line, and recipes checked before anything is imported
(``predict``, ``info``, ``export``), with ``user_packages`` for a config's own classes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from helpers import TINY_TRAINING

import molgraph
from molgraph.bundles import write_bundle
from molgraph.cli.main import main
from molgraph.errors import CheckpointError
from molgraph.featurize import MoleculeFeaturizer
from molgraph.models import MLPHead, PropertyModel, Task
from molgraph.models.recipe import ModuleSpec, Recipe
from molgraph.nn import GINEncoder
from molgraph.predict import load_model

FIXTURES = Path(__file__).parents[1] / "fixtures" / "bad_data"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOLGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MOLGRAPH_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.delenv("MOLGRAPH_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # the train command replaces it
    return tmp_path


def _train(run_dir: Path, *overrides: str) -> int:
    return main(["train", f"hydra.run.dir={run_dir}", *TINY_TRAINING, *overrides])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ((f"data.path={FIXTURES / 'empty.csv'}",), "empty.csv: is empty"),
        ((f"data.path={FIXTURES / 'latin1.csv'}",), "latin1.csv: is not UTF-8 text"),
        (
            (f"data.path={FIXTURES / 'text_target.csv'}", "data.target_columns=[activity]"),
            "target column 'activity' holds text",
        ),
        (("data.task=classification",), "is set to classification, but 1126 of its 1128"),
        (("split=column",), "Missing mandatory value: column"),
        (("encoder._target_=os.system",), "refusing to instantiate 'os.system'"),
        (
            ("data.task=classification", "uncertainty=mve"),
            "a variance head (uncertainty=mve) needs regression targets, not 'classification'",
        ),
    ],
    ids=[
        "empty",
        "latin1",
        "text-target",
        "classification-on-regression",
        "missing",
        "target",
        "variance-on-classification",
    ],
)
def test_data_and_config_errors_are_one_line(isolated, capsys, overrides, message) -> None:
    code = _train(isolated / "run", *overrides)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("molgraph train:")]
    assert code == 1
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert (isolated / "run" / "failed.json").is_file()


@pytest.mark.parametrize("switch", ["--debug", "MOLGRAPH_DEBUG"])
def test_debug_shows_the_traceback(isolated, capsys, monkeypatch, switch) -> None:
    arguments = [f"data.path={FIXTURES / 'empty.csv'}"]
    if switch == "--debug":
        arguments.append("--debug")
    else:
        monkeypatch.setenv("MOLGRAPH_DEBUG", "1")
    with pytest.raises(SystemExit) as raised:  # Hydra prints the traceback and exits 1
        _train(isolated / "run", *arguments)
    assert raised.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "InputError" in err and "is empty" in err


# ---- hostile recipes: nothing is imported before the allow-list check ------------------


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A module reachable as ``molgraph.hostile_plugin`` whose import writes a marker."""
    marker = tmp_path / "imported"
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "hostile_plugin.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('x')\nEncoder = object\n"
    )
    monkeypatch.setattr(molgraph, "__path__", [*molgraph.__path__, str(folder)])
    monkeypatch.delitem(sys.modules, "molgraph.hostile_plugin", raising=False)
    return "molgraph.hostile_plugin.Encoder", marker


def _model() -> tuple[PropertyModel, Recipe]:
    featurizer = MoleculeFeaturizer()
    encoder = ModuleSpec.of(GINEncoder, in_node_dim=featurizer.node_dim,
                            in_edge_dim=featurizer.edge_dim, hidden_dim=8, num_layers=1)  # fmt: skip
    head = ModuleSpec.of(MLPHead, in_dim=8, out_dim=1, hidden_dim=4)
    recipe = Recipe(featurizer, encoder, head, Task("regression", ("y",)))
    model = PropertyModel(encoder.build(), head.build(), recipe.task, recipe=recipe)
    return model, recipe


def _hostile(recipe: dict, target: str) -> dict:
    return {**recipe, "encoder": {**recipe["encoder"], "_target_": target}}


def test_the_plugin_would_run_if_imported(plugin) -> None:
    target, marker = plugin
    __import__(target.rpartition(".")[0])  # so the tests below could fail
    assert marker.is_file()


def test_predict_refuses_before_importing(plugin, tmp_path) -> None:
    target, marker = plugin
    model, recipe = _model()
    state = {"molgraph": _hostile(recipe.to_dict(), target), "state_dict": model.state_dict()}
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match=r"refusing 'molgraph\.hostile_plugin\.Encoder'"):
        load_model(tmp_path)
    assert not marker.exists()


def test_info_and_export_refuse_hostile_recipes(plugin, tmp_path, capsys) -> None:
    target, marker = plugin
    model, recipe = _model()
    bundle = write_bundle(tmp_path / "bundle", recipe, model.state_dict())
    assert main(["info", str(bundle)]) == 0
    recipe_file = bundle / "recipe.json"
    recipe_file.write_text(json.dumps(_hostile(json.loads(recipe_file.read_text()), target)))
    assert main(["info", str(bundle)]) == 1
    run = tmp_path / "run"
    run.mkdir()
    state = {"molgraph": _hostile(recipe.to_dict(), "os.system"), "state_dict": model.state_dict()}
    torch.save(state, run / "model.pt")
    assert main(["export", str(run), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "molgraph info:" in err and "refusing 'molgraph.hostile_plugin.Encoder'" in err
    assert "molgraph export:" in err and "refusing 'os.system'" in err
    assert not marker.exists() and not (tmp_path / "out").exists()


# ---- a user's own classes: allowed from a config that lists their package ---------------


def test_user_packages_allow_a_configs_own_encoder(isolated, tmp_path, monkeypatch) -> None:
    package = tmp_path / "site" / "my_encoders"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from molgraph.nn import GINEncoder\n\nclass MyEncoder(GINEncoder):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    own = "encoder._target_=my_encoders.MyEncoder"
    assert _train(isolated / "refused", own) == 1
    assert _train(isolated / "run", own, "user_packages=[my_encoders]") == 0
    record = torch.load(isolated / "run" / "model.pt", weights_only=True)["molgraph"]
    assert record["encoder"]["_target_"] == "my_encoders.MyEncoder"
    with pytest.raises(CheckpointError, match=r"a recipe names classes of molgraph\.nn"):
        load_model(isolated / "run")  # a recipe read from a file stays strict
