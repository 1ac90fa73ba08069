"""Prediction inputs: every row kept, with its graph or its reason, read as the data
sources read the same formats."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
import torch

from molgraph.data import MutationalScan, VariantGraphs, VariantOptions, read_inputs
from molgraph.errors import MolgraphError
from molgraph.featurize import MoleculeFeaturizer, ProteinFeaturizer

FEATURIZER = ProteinFeaturizer(k=8)
OPTIONS = {"num_workers": 1, "progress": False}


def _demo_file(name: str) -> str:
    return str(resources.files("molgraph.datasets") / name)


def test_molecules_keep_every_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id,smiles\na,CCO\nb,C1CC((\nc,\nd,c1ccccc1\n")
    rows = read_inputs(path, MoleculeFeaturizer(), **OPTIONS)
    assert rows.table["id"].tolist() == ["a", "b", "c", "d"]
    assert rows.errors == ["", "RDKit could not parse the SMILES", "empty SMILES", ""]
    assert rows.ok.tolist() == [True, False, False, True]
    assert rows.graphs is not None and len(rows.graphs) == 2
    with pytest.raises(MolgraphError, match="molecules are read from one file, got 2"):
        read_inputs([path, path], MoleculeFeaturizer())
    with pytest.raises(MolgraphError, match="no input given"):
        read_inputs([], MoleculeFeaturizer())


def test_structure_folder_and_table(shared_data: Path, tmp_path: Path) -> None:
    robustness = shared_data / "proteins" / "robustness"
    folder = tmp_path / "structures"
    folder.mkdir()
    shutil.copy(robustness / "pdb1ubi_ca.pdb", folder / "ubi.pdb")
    (folder / "broken.pdb").write_text("not a structure\n")
    (folder / "notes.txt").write_text("skipped: not a structure file\n")
    rows = read_inputs(folder, FEATURIZER, **OPTIONS)
    assert rows.table["id"].tolist() == ["broken", "ubi"]
    assert rows.errors[0] and rows.errors[1] == ""
    assert rows.graphs is not None and rows.graphs.node_counts.tolist() == [76]

    table = tmp_path / "inputs.csv"
    pd.DataFrame(
        {"file": ["structures/ubi.pdb", "gone.pdb", "", str(robustness / "2XHE.pdb.gz")],
         "chain": ["", "", "", "B"]}
    ).to_csv(table, index=False)  # fmt: skip
    rows = read_inputs(table, FEATURIZER, chain_column="chain", **OPTIONS)
    assert rows.errors[:3] == ["", "no such file", "no such file"] and rows.errors[3] == ""
    one = FEATURIZER.residues((str(robustness / "2XHE.pdb.gz"), ("B",)))
    assert rows.graphs is not None and rows.graphs.node_counts.tolist()[1] == len(one.sequence)
    with pytest.raises(MolgraphError, match="no column 'chains' naming structure files"):
        read_inputs(table, FEATURIZER, chain_column="chains", **OPTIONS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MolgraphError, match="no structure files in this folder"):
        read_inputs(tmp_path / "empty", FEATURIZER, **OPTIONS)


def test_variants_read_as_the_scan_reads_them(tmp_path: Path) -> None:
    table = pd.read_csv(_demo_file("gb1_demo.csv"), dtype=str).iloc[:8].copy()
    table.loc[1, "mutations_2qmt_numbering"] = "A39I"  # 2QMT has V at 39
    table.loc[2, "mutations_2qmt_numbering"] = "K10*"
    path = tmp_path / "variants.csv"
    table.to_csv(path, index=False)
    options = VariantOptions(
        structure=_demo_file("gb1_2qmt.pdb"),
        mutations_column="mutations_2qmt_numbering",
        chains=("A",),
    )
    rows = read_inputs(path, FEATURIZER, variants=options, **OPTIONS)
    assert rows.errors[1] == "A39I: the structure has V at residue number 39, not A"
    assert "stop codon" in rows.errors[2] and rows.ok.sum() == 6
    scan = MutationalScan(str(path), options.structure, ["fitness"], chains=["A"],
                          mutations_column="mutations_2qmt_numbering")  # fmt: skip
    dataset = scan.load(FEATURIZER, progress=False)
    assert isinstance(rows.graphs, VariantGraphs)
    assert torch.equal(rows.graphs.residue_types, dataset.graphs.residue_types)
    assert dataset.failures["reason"].tolist() == [rows.errors[1], rows.errors[2]]
    with pytest.raises(MolgraphError, match="name the column of mutations or sequences"):
        read_inputs(path, FEATURIZER, variants=VariantOptions(structure=options.structure),
                    **OPTIONS)  # fmt: skip
