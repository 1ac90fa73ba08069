"""The featurizer contract: every featurizer is a Featurizer, its encode gives GraphArrays of
its declared widths (picklable, for worker processes), and its recipe rebuilds it."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from molgraph.featurize import (
    Featurizer,
    GraphArrays,
    MoleculeFeaturizer,
    ProteinFeaturizer,
    featurizer_from_dict,
)
from molgraph.packed import PackedGraphs

GB1 = Path(__file__).parents[2] / "molgraph" / "datasets" / "gb1_2qmt.pdb"
FEATURIZERS = {
    "molecule": (MoleculeFeaturizer(), ["CCO", "C1CC((", "c1ccccc1O"]),
    "molecule_pretrain_3d": (
        MoleculeFeaturizer.preset("pretrain", conformer=True),
        ["CCO", "C1CC((", "[Na+].[Cl-]"],
    ),
    "protein": (ProteinFeaturizer(bfactor=True), [GB1, Path("missing.pdb"), (GB1, "A")]),
}


@pytest.mark.parametrize("name", FEATURIZERS)
def test_encode_gives_graph_arrays_of_the_declared_widths(name: str) -> None:
    featurizer, items = FEATURIZERS[name]
    assert isinstance(featurizer, Featurizer)
    arrays, errors = featurizer.encode(items)
    assert isinstance(arrays, GraphArrays)
    assert [e is None for e in errors] == [True, False, True]
    assert arrays.num_graphs == 2 and len(arrays.x) == arrays.node_counts.sum()
    assert arrays.x.shape[1] == featurizer.node_dim
    assert arrays.edge_attr.shape[1] == featurizer.edge_dim
    assert (arrays.pos is not None) == featurizer.has_coordinates
    if featurizer.node_vector_dim:
        assert arrays.node_vectors.shape[1:] == (featurizer.node_vector_dim, 3)
    else:
        assert arrays.node_vectors is None
    arrays_back, errors_back = pickle.loads(pickle.dumps((arrays, errors)))
    for key, value in arrays.items():
        np.testing.assert_array_equal(arrays_back[key], value)
    assert [str(e) for e in errors_back] == [str(e) for e in errors]
    assert PackedGraphs.from_arrays(arrays).node_dim == featurizer.node_dim


@pytest.mark.parametrize("name", FEATURIZERS)
def test_recipe_rebuilds_the_featurizer(name: str) -> None:
    featurizer, _ = FEATURIZERS[name]
    assert featurizer_from_dict(featurizer.to_dict()) == featurizer


def test_unknown_recipe_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown featurizer kind 'lattice'; known: molecule"):
        featurizer_from_dict({"kind": "lattice"})


def test_graph_arrays_read_like_a_mapping_of_present_fields() -> None:
    arrays, _ = MoleculeFeaturizer().encode(["CCO"])
    assert arrays.keys() == ("x", "src", "dst", "edge_attr", "node_counts", "edge_counts")
    assert "x" in arrays and "pos" not in arrays
    assert arrays["node_counts"].tolist() == [3]
    with pytest.raises(KeyError):
        arrays["pos"]
    with pytest.raises(ValueError, match="cannot concatenate graphs with fields"):
        GraphArrays.concat([arrays, MoleculeFeaturizer(conformer=True).encode(["C"])[0]])
    with pytest.raises(ValueError, match="no graphs"):
        GraphArrays.concat([])


def test_empty_arrays_keep_the_widths() -> None:
    featurizer = ProteinFeaturizer()
    arrays, errors = featurizer.encode([Path("missing.pdb")])
    assert errors[0] is not None and arrays.num_graphs == 0
    assert arrays.x.shape == (0, featurizer.node_dim) and arrays.x.dtype == np.float32
    assert arrays.edge_attr.shape == (0, featurizer.edge_dim)
    assert arrays.node_vectors.shape == (0, 3, 3) and arrays.pos.shape == (0, 3)
