"""Bundles: export, load in a fresh process, refuse tampered or pickled weights, registry,
the embedding API's failure policy, and training from a bundle."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_TRAINING
from safetensors.torch import load_file

from molgraph import load_encoder
from molgraph.bundles import RECIPE, WEIGHTS, export_run, open_bundle, read_bundle, register
from molgraph.bundles.format import sha256_of, write_bundle
from molgraph.errors import CheckpointError, ConfigError, FeaturizationError
from molgraph.models import Recipe
from molgraph.predict import load_model, predict_items

SMILES = ["CCO", "c1ccccc1O", "[Na+].[Cl-]", "C", "CC(=O)Nc1ccc(O)cc1", "C[C@H](N)C(=O)O"]
GB1 = Path(__file__).resolve().parents[2] / "molgraph" / "datasets" / "gb1_2qmt.pdb"

# Loads the bundles in a new interpreter and saves what they compute.
FRESH_PROCESS = """
import sys
import numpy as np
from molgraph import load_encoder

molecules, proteins, out = sys.argv[1:4]
smiles = sys.argv[4].split(" ")
enc = load_encoder(molecules)
pred, _ = enc.predict_rows(smiles)
protein = load_encoder(proteins)
structure = [sys.argv[5]]
np.savez(out, embed=enc.embed(smiles).numpy(), predict=pred,
         protein_embed=protein.embed(structure).numpy(), protein_predict=protein.predict_rows(structure)[0])
"""


def _in_memory(run_dir: Path, items: list) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and predictions of the run's own model (``model.pt``)."""
    model, featurizer = load_model(run_dir)
    packed = featurizer.packed(items)
    with torch.no_grad():
        embedded = model.embed(packed.batch(range(len(items)))).numpy()
    return embedded, predict_items(model, featurizer, items, progress=False)[0]


def test_round_trip_in_a_fresh_process(
    molecule_run: Path, molecule_bundle: Path, protein_run: Path, protein_bundle: Path, tmp_path
) -> None:
    out = tmp_path / "fresh.npz"
    command = [sys.executable, "-c", FRESH_PROCESS, str(molecule_bundle), str(protein_bundle)]
    subprocess.run([*command, str(out), " ".join(SMILES), str(GB1)], check=True, timeout=300)
    fresh = np.load(out)
    embedded, predicted = _in_memory(molecule_run, SMILES)
    assert fresh["embed"].shape == embedded.shape == (len(SMILES), 32)
    np.testing.assert_allclose(fresh["embed"], embedded, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fresh["predict"], predicted, rtol=0, atol=1e-6)
    protein_embedded, protein_predicted = _in_memory(protein_run, [str(GB1)])
    np.testing.assert_allclose(fresh["protein_embed"], protein_embedded, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fresh["protein_predict"], protein_predicted, rtol=0, atol=1e-6)
    assert np.isfinite(fresh["predict"]).all() and np.abs(fresh["embed"]).max() > 0


def test_bundle_records_its_recipe(molecule_run: Path, molecule_bundle: Path) -> None:
    recipe = json.loads((molecule_bundle / RECIPE).read_text())
    assert recipe["weights"]["sha256"] == sha256_of(molecule_bundle / WEIGHTS)
    assert recipe["encoder"]["_target_"] == "molgraph.nn.GINEncoder"
    assert recipe["featurizer"]["kind"] == "molecule"
    assert recipe["task"]["kind"] == "regression"
    metrics = json.loads((molecule_run / "metrics.json").read_text())
    assert recipe["trained_on"]["metrics"] == metrics
    assert recipe["trained_on"]["split"]["_target_"] == "molgraph.data.ScaffoldSplit"
    assert {"target_mean", "target_std"} <= set(load_file(molecule_bundle / WEIGHTS))


def test_encoder_only_bundle_embeds_but_does_not_predict(
    molecule_run: Path, molecule_bundle: Path, tmp_path: Path
) -> None:
    bare = export_run(molecule_run, tmp_path / "bare", with_head=False)
    assert {k.split(".")[0] for k in load_file(bare / WEIGHTS)} == {"encoder"}
    encoder = load_encoder(bare)
    assert encoder.model is None
    full = load_encoder(molecule_bundle)
    torch.testing.assert_close(encoder.embed(SMILES), full.embed(SMILES), rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="encoder only"):
        encoder.predict_rows(SMILES)
    with pytest.raises(CheckpointError, match="encoder only"):
        load_model(bare)


def test_module_is_the_encoder_a_caller_can_train(molecule_bundle: Path) -> None:
    encoder = load_encoder(molecule_bundle)
    batch = encoder.featurizer.packed(SMILES).batch(range(len(SMILES)))
    module = encoder.module.train()
    loss = module(batch).graph.square().sum()
    loss.backward()
    assert all(p.grad is not None for p in module.parameters() if p.requires_grad)


# --- failures: inputs and files -------------------------------------------------------


def test_embed_raises_on_a_bad_input_and_embed_rows_keeps_it(molecule_bundle: Path) -> None:
    encoder = load_encoder(molecule_bundle)
    items = ["CCO", "C1CC((", "c1ccccc1O", ""]
    with pytest.raises(FeaturizationError) as caught:
        encoder.embed(items)
    assert caught.value.item == "C1CC((" and "1 more" in caught.value.reason
    rows, errors = encoder.embed_rows(items)
    assert rows.shape == (4, encoder.out_dim)
    assert [bool(e) for e in errors] == [False, True, False, True]
    assert torch.isnan(rows[[1, 3]]).all() and torch.isfinite(rows[[0, 2]]).all()
    torch.testing.assert_close(rows[[0, 2]], encoder.embed(["CCO", "c1ccccc1O"]))


class _RunsCode:
    """Unpickling this writes ``marker``: what a malicious weights file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.mark.parametrize("recipe_updated", [False, True], ids=["checksum", "format"])
def test_pickled_weights_are_refused_and_never_run(
    molecule_bundle: Path, tmp_path: Path, recipe_updated: bool
) -> None:
    payload = pickle.dumps(_RunsCode(tmp_path / "proof"))
    pickle.loads(payload)  # the payload is live: unpickled, it runs
    assert (tmp_path / "proof").is_file()

    bundle = shutil.copytree(molecule_bundle, tmp_path / "bundle")
    marker = tmp_path / "marker"
    (bundle / WEIGHTS).write_bytes(pickle.dumps(_RunsCode(marker)))
    if recipe_updated:  # the attacker also rewrote the recipe's checksum
        recipe = json.loads((bundle / RECIPE).read_text())
        recipe["weights"]["sha256"] = sha256_of(bundle / WEIGHTS)
        (bundle / RECIPE).write_text(json.dumps(recipe))
    reason = "not a safetensors file" if recipe_updated else "does not match its recipe"
    for load in (load_encoder, load_model, read_bundle):
        with pytest.raises(CheckpointError, match=reason):
            load(bundle)
    assert not marker.exists()


def test_changed_weights_are_refused(molecule_bundle: Path, tmp_path: Path) -> None:
    bundle = shutil.copytree(molecule_bundle, tmp_path / "bundle")
    data = bytearray((bundle / WEIGHTS).read_bytes())
    data[-1] ^= 1  # one bit of one weight
    (bundle / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"sha256 .* does not match its recipe"):
        load_encoder(bundle)


def test_recipe_naming_foreign_code_is_refused(molecule_bundle: Path, tmp_path: Path) -> None:
    bundle = shutil.copytree(molecule_bundle, tmp_path / "bundle")
    recipe = json.loads((bundle / RECIPE).read_text())
    recipe["encoder"]["_target_"] = "os.system"
    (bundle / RECIPE).write_text(json.dumps(recipe))
    with pytest.raises(CheckpointError, match=r"os\.system"):
        load_encoder(bundle)


# --- registry ---------------------------------------------------------------------------


def test_registry_loads_by_name_and_verifies(molecule_bundle: Path, registry: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no bundle of that name.*registered: none"):
        load_encoder("esol-tiny")
    register(molecule_bundle, "esol-tiny")
    assert (registry / "esol-tiny" / RECIPE).is_file()
    torch.testing.assert_close(
        load_encoder("esol-tiny").embed(SMILES), load_encoder(molecule_bundle).embed(SMILES)
    )
    with pytest.raises(CheckpointError, match="already registered"):
        register(molecule_bundle, "esol-tiny")
    with pytest.raises(CheckpointError, match="registry name"):
        register(molecule_bundle, "../escape")

    # weights and recipe replaced consistently: only the registry's record notices
    stored = registry / "esol-tiny"
    state = open_bundle("esol-tiny").state_dict
    recipe = Recipe.from_dict(json.loads((stored / RECIPE).read_text()))
    write_bundle(
        stored, recipe, {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    )
    with pytest.raises(CheckpointError, match="does not match the registry"):
        load_encoder("esol-tiny")


# --- training from a bundle --------------------------------------------------------------


def _encoder_state(run_or_bundle: Path) -> dict[str, torch.Tensor]:
    model, _ = load_model(run_or_bundle)
    return {k: v for k, v in model.state_dict().items() if k.startswith("encoder.")}


def test_training_from_a_bundle_frozen_and_fine_tuned(
    molecule_bundle: Path, tmp_path: Path, train
) -> None:
    # the bundle's width (32) comes with it: the default encoder.hidden_dim is not used
    overrides = [o for o in TINY_TRAINING if not o.startswith("encoder.")]
    frozen = train(tmp_path, "frozen", *overrides, f"encoder.pretrained={molecule_bundle}",
                   "encoder.freeze=true")  # fmt: skip
    tuned = train(tmp_path, "tuned", *overrides, f"encoder.pretrained={molecule_bundle}")
    start = _encoder_state(molecule_bundle)
    for name, value in _encoder_state(frozen).items():  # batch-norm statistics included
        torch.testing.assert_close(value, start[name], rtol=0, atol=0, msg=name)
    moved = _encoder_state(tuned)
    assert any(not torch.equal(moved[name], start[name]) for name in start)
    recipe = load_model(frozen)[0].recipe.to_dict()
    assert recipe["encoder"] == json.loads((molecule_bundle / RECIPE).read_text())["encoder"]
    assert recipe["trained_on"]["pretrained"]["frozen"] is True
    assert recipe["trained_on"]["pretrained"]["sha256"] == sha256_of(molecule_bundle / WEIGHTS)


def test_training_from_a_bundle_checks_the_featurizer(molecule_bundle: Path, tmp_path) -> None:
    from hydra import compose, initialize_config_dir

    from molgraph.builder import config_dir, train_from_config

    def run(*overrides: str) -> None:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("train", overrides=[f"cache_dir={tmp_path}", *overrides])
        train_from_config(cfg, tmp_path / "run")

    with pytest.raises(ConfigError, match="featurizer differs from the bundle's in atoms"):
        run("featurizer=pretrain", f"encoder.pretrained={molecule_bundle}")
    with pytest.raises(ConfigError, match=r"encoder\.freeze=true needs encoder\.pretrained"):
        run("encoder.freeze=true")
