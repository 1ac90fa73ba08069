"""DGL-LifeSci's pre-trained GIN, imported into molgraph, computes what dgllife computes.

dgllife is a test requirement (``pip install -e ".[test]"``): without it this module fails
to import, so the check is never skipped. It is imported after :mod:`molgraph.graphs`,
which makes DGL importable without GraphBolt.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest
import torch

from molgraph.bundles.dgllife import bundle_from_dgllife, gin_from_dgllife, read_dgllife_state
from molgraph.errors import CheckpointError
from molgraph.graphs import dgl
from molgraph.pretrained import load_encoder

dgllife_model = importlib.import_module("dgllife.model")
dgllife_utils = importlib.import_module("dgllife.utils")

pytestmark = pytest.mark.usefixtures("one_thread")

# besides ESOL: stereo bonds (bond directions), both chiral tags, an edgeless salt, one atom
EXTRA = ("C/C=C/Cl", "F/C=C\\F", "C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O", "[Na+].[Cl-]", "C")
ATOL = 1e-5


@pytest.fixture(scope="module")
def smiles(esol: pd.DataFrame) -> list[str]:
    return [*esol["smiles"].iloc[:50], *EXTRA]


def _dgllife_gin(smiles: list[str], emb_dim: int) -> tuple[torch.nn.Module, object]:
    """dgllife's GIN as its checkpoints are built (node tables 120/3, edge tables 6/3,
    JK last), seeded, with batch-norm statistics and affine weights off their defaults;
    and its input graph."""
    torch.manual_seed(0)
    gin = dgllife_model.GIN(
        num_node_emb_list=[120, 3],
        num_edge_emb_list=[6, 3],
        num_layers=5,
        emb_dim=emb_dim,
        JK="last",
        dropout=0.5,
    )
    graph = _dgllife_graph(smiles)
    with torch.no_grad():
        for layer in gin.gnn_layers:
            layer.bn.weight.uniform_(0.5, 1.5)
            layer.bn.bias.normal_(0.0, 0.2)
        for _ in range(3):
            _run(gin, graph)  # training mode: the running statistics move
    return gin.eval(), graph


def _dgllife_graph(smiles: list[str]):
    """dgllife's batched input graph: pretrain featurizers, self-loops, input atom order."""
    return dgl.batch(
        [
            dgllife_utils.smiles_to_bigraph(
                s,
                add_self_loop=True,
                node_featurizer=dgllife_utils.PretrainAtomFeaturizer(),
                edge_featurizer=dgllife_utils.PretrainBondFeaturizer(),
                canonical_atom_order=False,
            )
            for s in smiles
        ]
    )


def _run(gin: torch.nn.Module, graph) -> torch.Tensor:
    nodes = [graph.ndata["atomic_number"], graph.ndata["chirality_type"]]
    edges = [graph.edata["bond_type"], graph.edata["bond_direction_type"]]
    return gin(graph, nodes, edges)


@pytest.fixture(scope="module")
def reference(smiles: list[str], tmp_path_factory: pytest.TempPathFactory):
    """dgllife's node and mean-pooled graph embeddings, and its checkpoint file."""
    gin, graph = _dgllife_gin(smiles, emb_dim=300)
    with torch.no_grad():
        node = _run(gin, graph)
        graph.ndata["h"] = node
        pooled = dgl.mean_nodes(graph, "h")
    path = tmp_path_factory.mktemp("dgllife") / "gin_supervised_contextpred.pth"
    torch.save({"model_state_dict": gin.state_dict()}, path)
    return node, pooled, path


def test_the_reference_sees_bond_directions_and_chirality(smiles: list[str], reference) -> None:
    # the test molecules exercise every embedding table the mapping has to move
    graph = _dgllife_graph(smiles)
    assert set(graph.edata["bond_direction_type"].tolist()) == {0, 1, 2}
    assert set(graph.ndata["chirality_type"].tolist()) == {0, 1, 2}
    assert set(graph.edata["bond_type"].tolist()) == {0, 1, 2, 3, 4}  # 4: self-loops


def test_imported_gin_matches_dgllife(smiles: list[str], reference) -> None:
    node, pooled, path = reference
    encoder, featurizer, _ = gin_from_dgllife(read_dgllife_state(path), readout="mean")
    packed = featurizer.packed(smiles)
    with torch.no_grad():
        out = encoder(packed.batch(range(len(packed))))
    assert out.node.shape == node.shape == (packed.x.shape[0], 300)
    torch.testing.assert_close(out.node, node, rtol=0, atol=ATOL)
    torch.testing.assert_close(out.graph, pooled, rtol=0, atol=ATOL)
    assert pooled.abs().max() > 0.1  # not a comparison of zeros


def test_bundle_of_a_dgllife_checkpoint_embeds_as_dgllife(
    smiles: list[str], reference, tmp_path: Path
) -> None:
    _, pooled, path = reference
    bundle = bundle_from_dgllife(path, tmp_path / "contextpred")
    encoder = load_encoder(bundle)
    assert encoder.recipe.trained_on["name"] == "gin_supervised_contextpred"
    torch.testing.assert_close(encoder.embed(smiles, batch_size=16), pooled, rtol=0, atol=ATOL)


def test_a_state_dict_of_another_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"model_state_dict": {"linear.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(CheckpointError, match=r"not the state dict of a dgllife\.model\.GIN"):
        read_dgllife_state(path)
