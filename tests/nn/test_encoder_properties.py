"""Properties every graph encoder must have, run over a table of all nine encoders.

Each encoder is built small, in float64, in eval mode with batch-norm statistics moved off
their defaults (``helpers.small_encoder``), with the settings in its ``EncoderSpec``:
which readouts / norms / options each property is checked for, how it is padded, how it
is overfitted, what its config must give. The properties: node permutations (within and
across graphs), edge order, a graph alone equals the graph in a batch, single-node and
edgeless graphs, output shapes, a padded batch equals the plain batch in training mode,
overfitting 32 ESOL molecules, building from the yaml; and for the encoders that read
coordinates: rotation + translation, mirror images, needing coordinates, CUDA graphs.

What is particular to one encoder (hand computations, references by loops, layer-level
equivariance, paper-specific rules) stays in that encoder's own test file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
import pytest
import torch
from helpers import (
    ESOL_TARGET,
    SmilesFixtures,
    assert_blind_to_mirror_images,
    assert_cuda_graph_step_matches_eager,
    assert_equivariant,
    assert_same_output,
    permute_batch_edges,
    permute_batch_nodes,
    small_encoder,
    within_graph_permutation,
)
from omegaconf import OmegaConf
from torch import nn

from molgraph.batch import GraphBatch
from molgraph.builder import build, config_dir
from molgraph.featurize import MoleculeFeaturizer
from molgraph.nn.encoders.attentivefp import AttentiveFPEncoder
from molgraph.nn.encoders.dmpnn import DMPNNEncoder
from molgraph.nn.encoders.egnn import EGNNEncoder
from molgraph.nn.encoders.gat import GATEncoder
from molgraph.nn.encoders.gcn import GCNEncoder
from molgraph.nn.encoders.gin import GINEncoder
from molgraph.nn.encoders.gvp import GVPEncoder
from molgraph.nn.encoders.mpnn import MPNNEncoder
from molgraph.nn.encoders.painn import PaiNNEncoder
from molgraph.nn.encoders.pretrain_gin import PretrainGINEncoder
from molgraph.packed import PackedGraphs, Padding

pytestmark = pytest.mark.usefixtures("one_thread")

ATOL = 1e-10
READOUTS = ("sum", "norm", "mean", "max", "attention", "set2set")
NORMS = ("batch", "layer", "none")
# SMILES, and how many leading atoms the last atom has no path to
EDGELESS = [(["C"], 0), (["[Na+].[Cl-]"], 1), (["C", "[Xe]", "CCO"], 2)]
Case = tuple[str, dict[str, Any]]


def grid(**axes: tuple) -> list[Case]:
    """Every combination of the axes' values, as ``(id, kwargs)`` cases."""
    names = list(axes)
    return [
        ("-".join(str(v) for v in values), dict(zip(names, values, strict=True)))
        for values in itertools.product(*axes.values())
    ]


DEFAULT: list[Case] = [("default", {})]


@dataclass(frozen=True)
class Padded:
    """The padded-vs-plain batch check: builds (no dropout, training mode), the graphs, the
    padding, and the gradient tolerance ``(atol, rtol)`` (None: outputs only)."""

    builds: list[Case]
    indices: tuple[int, ...] = (0, 3, 8, 9, 10, 5)
    padding: dict[str, int] = field(
        default_factory=lambda: {"graphs": 8, "node_multiple": 64, "edge_multiple": 64}
    )
    grad_tol: tuple[float, float] | None = None


@dataclass(frozen=True)
class Overfit:
    """Overfitting 32 standardised ESOL targets in float32: the build, the step budget, how
    far from the targets the first loss must be, whether training stops at MSE < 0.05, and
    whether the eval-mode fit is checked too."""

    build: dict[str, Any]
    steps: int = 300
    first_loss_above: float = 0.5
    early_stop: bool = False
    eval_check: bool = True


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    cls: type[nn.Module]
    hidden: int
    build: dict[str, Any]  # the small float64 build, besides hidden_dim
    padded: Padded
    overfit: Overfit
    config: str  # conf/encoder/<config>.yaml
    conformer: bool = False  # reads coordinates (batch_3d); equivariance tests apply
    returns_pos: bool = False  # outputs coordinates (which must move equivariantly)
    prepare: Callable[[nn.Module], None] | None = None
    warmup: int = 3
    node_perm: list[Case] = field(default_factory=lambda: DEFAULT)
    perm_seeds: int = 2  # within-graph node permutations per case
    across: list[Case] = field(default_factory=lambda: DEFAULT)
    edges: list[Case] = field(default_factory=lambda: DEFAULT)
    edge_perms: int = 3
    alone: list[Case] = field(default_factory=lambda: DEFAULT)
    shapes: list[Case] = field(default_factory=lambda: grid(readout=READOUTS))
    options: list[Case] = field(default_factory=lambda: DEFAULT)  # rigid motions, mirrors
    # edgeless graphs: the readout that pools the edgeless first graph (None: no check),
    # and whether an atom's change must stay out of the nodes it has no path to
    edgeless_readout: str | None = "sum"
    locality: bool = False
    config_check: Callable[[nn.Module, Any], None] | None = None
    cuda_build: dict[str, Any] | None = None

    def make(self, batch: GraphBatch, **overrides) -> nn.Module:
        return small_encoder(
            self.cls,
            batch,
            warmup=self.warmup,
            prepare=self.prepare,
            hidden_dim=self.hidden,
            **{**self.build, **overrides},
        )

    def readout_of(self, kwargs: dict[str, Any]) -> str | None:
        return kwargs.get("readout", self.build.get("readout"))


# --- per-encoder settings ---------------------------------------------------------------


def _egnn_moving_coordinates(encoder: nn.Module) -> None:
    # the reference initialisation scales the coordinate update by 0.001: make it sizeable
    for layer in encoder.layers:
        nn.init.normal_(layer.coord_mlp[-1].weight, std=0.3)


def _attentivefp_biases(encoder: nn.Module) -> None:
    # biases moved off zero so that they are tested
    for name, p in encoder.named_parameters():
        if name.endswith("bias") and not name.startswith(("node_proj", "gate_gru")):
            p.normal_(0.0, 0.1)


def _pretrain_gin_config(encoder: nn.Module, cfg) -> None:
    # the published checkpoints' architecture
    assert encoder.out_dim == 300 and len(encoder.layers) == 5 and encoder.jk == "last"
    assert encoder.node_proj.bias is None and encoder.node_proj.in_features == 135


def _gcn_config(encoder: nn.Module, cfg) -> None:
    assert encoder.out_dim == cfg.hidden_dim == 300
    assert len(encoder.layers) == cfg.num_layers
    assert encoder.layers[0].weight.in_features == 135


def _gat_config(encoder: nn.Module, cfg) -> None:
    assert encoder.out_dim == cfg.hidden_dim == 256
    assert len(encoder.layers) == cfg.num_layers
    assert encoder.layers[0].heads == cfg.heads == 4
    assert encoder.layers[0].lin_src.in_features == 135
    assert encoder.layers[0].lin_edge.in_features == 14


def _mpnn_config(encoder: nn.Module, cfg) -> None:
    assert cfg.readout == "set2set" and encoder.out_dim == 2 * cfg.hidden_dim == 128
    assert encoder.num_steps == cfg.num_layers == 3
    assert encoder.node_proj.in_features == 135
    assert encoder.conv.edge_mlp[0].in_features == 14


def _dmpnn_config(encoder: nn.Module, cfg) -> None:
    # chemprop's defaults
    assert encoder.out_dim == 300 and encoder.num_layers == 3
    assert encoder.readout.kind == "norm" and isinstance(encoder.dropout, nn.Identity)
    assert encoder.W_i.in_features == 135 + 14


def _attentivefp_config(encoder: nn.Module, cfg) -> None:
    # the paper's width, PyG's example depth
    assert encoder.out_dim == 200 and len(encoder.atom_convs) == 1 and encoder.num_timesteps == 2
    assert encoder.node_proj.in_features == 135


def _painn_config(encoder: nn.Module, cfg) -> None:
    assert encoder.cutoff == 5.0


FLAT_PADDED = Padded(builds=[(n, {"num_layers": 3, "norm": n}) for n in NORMS])
CHEMPROP_PADDED = Padded(
    builds=[("batch", {"norm": "batch"})],
    indices=(0, 3, 8, 9, 10, 4),
    padding={"graphs": 9, "node_multiple": 64},
)
SPATIAL_PADDING = {"graphs": 8, "node_multiple": 64}

SPECS = [
    EncoderSpec(
        "gin",
        GINEncoder,
        hidden=32,
        build={"num_layers": 3, "dropout": 0.2, "readout": "sum", "norm": "batch"},
        node_perm=grid(readout=READOUTS, norm=NORMS),
        perm_seeds=3,
        across=grid(readout=READOUTS, virtual_node=(False, True)),
        edges=grid(readout=READOUTS, virtual_node=(False, True)),
        alone=grid(readout=READOUTS, virtual_node=(False, True)),
        padded=Padded(
            builds=[
                (f"{n}-{v}", {"num_layers": 3, "norm": n, "virtual_node": v})
                for n, v in itertools.product(NORMS, (False, True))
            ]
        ),
        overfit=Overfit({"hidden_dim": 64, "num_layers": 3}, first_loss_above=1.0),
        config="gin",
    ),
    EncoderSpec(
        "pretrain_gin",
        PretrainGINEncoder,
        hidden=32,
        build={"num_layers": 3, "dropout": 0.2, "readout": "sum", "norm": "batch"},
        node_perm=grid(readout=READOUTS, jk=("last", "concat")),
        across=grid(jk=("last", "sum", "max", "concat")),
        edges=grid(jk=("last", "concat")),
        alone=grid(jk=("last", "max")),
        padded=FLAT_PADDED,
        overfit=Overfit({"hidden_dim": 64, "num_layers": 3}),
        config="pretrain_gin",
        config_check=_pretrain_gin_config,
    ),
    EncoderSpec(
        "gcn",
        GCNEncoder,
        hidden=32,
        build={"num_layers": 3, "dropout": 0.2, "readout": "sum", "norm": "batch"},
        node_perm=grid(readout=READOUTS, norm=NORMS),
        across=grid(readout=READOUTS),
        edges=grid(readout=("sum", "set2set")),
        alone=grid(readout=("sum", "set2set")),
        locality=True,
        padded=FLAT_PADDED,
        overfit=Overfit({"hidden_dim": 64, "num_layers": 3}),
        config="gcn",
        config_check=_gcn_config,
    ),
    EncoderSpec(
        "gat",
        GATEncoder,
        hidden=32,
        build={"num_layers": 3, "dropout": 0.2, "readout": "sum", "norm": "batch"},
        node_perm=grid(readout=READOUTS, norm=NORMS),
        across=grid(readout=READOUTS),
        edges=grid(readout=("sum", "set2set"), edge_messages=(False, True)),
        alone=grid(readout=("sum", "set2set")),
        locality=True,
        padded=FLAT_PADDED,
        overfit=Overfit({"hidden_dim": 64, "num_layers": 3}),
        config="gat",
        config_check=_gat_config,
    ),
    EncoderSpec(
        "mpnn",
        MPNNEncoder,
        hidden=32,
        build={
            "num_layers": 3,
            "dropout": 0.2,
            "edge_hidden_dim": 16,
            "readout": "sum",
            "norm": "batch",
        },
        node_perm=grid(readout=READOUTS, norm=NORMS),
        across=grid(readout=READOUTS),
        edges=grid(readout=("sum", "set2set"), aggr=("sum", "mean")),
        alone=grid(readout=("sum", "set2set")),
        locality=True,
        padded=FLAT_PADDED,
        # the paper's model (set2set, no norm) at a small width: the d x d edge matrices
        # dominate the CPU time
        overfit=Overfit({"hidden_dim": 32, "edge_hidden_dim": 32}, early_stop=True),
        config="mpnn",
        config_check=_mpnn_config,
    ),
    EncoderSpec(
        "dmpnn",
        DMPNNEncoder,
        hidden=32,
        build={"num_layers": 3, "dropout": 0.2, "readout": "mean", "norm": "none"},
        node_perm=grid(readout=READOUTS, norm=NORMS),
        across=grid(readout=READOUTS),
        edges=grid(readout=READOUTS),
        alone=[(f"{r}-batch", {"readout": r, "norm": "batch"}) for r in READOUTS],
        edgeless_readout="mean",
        padded=CHEMPROP_PADDED,
        # the default readout, chemprop's sum over 100, starts small: more steps
        overfit=Overfit({"hidden_dim": 64}, steps=600, early_stop=True, eval_check=False),
        config="dmpnn",
        config_check=_dmpnn_config,
    ),
    EncoderSpec(
        "attentivefp",
        AttentiveFPEncoder,
        hidden=32,
        build={"num_layers": 3, "num_timesteps": 2, "dropout": 0.2},
        prepare=_attentivefp_biases,
        warmup=0,
        perm_seeds=3,
        shapes=DEFAULT,  # one readout: attention over the atoms with a GRU
        edgeless_readout=None,  # tests/nn/test_attentivefp.py computes its edgeless output
        padded=replace(CHEMPROP_PADDED, builds=DEFAULT),
        overfit=Overfit({"hidden_dim": 64}, early_stop=True, eval_check=False),
        config="attentivefp",
        config_check=_attentivefp_config,
    ),
    EncoderSpec(
        "egnn",
        EGNNEncoder,
        hidden=16,
        build={"num_layers": 3, "dropout": 0.2},
        prepare=_egnn_moving_coordinates,
        conformer=True,
        returns_pos=True,
        # the defaults, and every stability / aggregation option switched
        options=[
            ("default", {}),
            ("batch-norm", {"norm": "batch"}),
            (
                "all-options",
                {
                    "norm": "layer",
                    "attention": True,
                    "coords_agg": "sum",
                    "tanh": True,
                    "coords_range": 2.0,
                    "normalize": True,
                    "readout": "set2set",
                },
            ),
        ],
        edge_perms=2,
        padded=Padded(
            builds=[(n, {"num_layers": 3, "norm": n}) for n in ("batch", "layer")],
            padding=SPATIAL_PADDING,
            grad_tol=(1e-8, 1e-7),  # threads reorder sums
        ),
        overfit=Overfit(
            {"hidden_dim": 64, "num_layers": 3, "norm": "batch", "readout": "mean"}, steps=150
        ),
        config="egnn",
        cuda_build={"hidden_dim": 32, "norm": "batch"},
    ),
    EncoderSpec(
        "painn",
        PaiNNEncoder,
        hidden=16,
        build={"num_layers": 3, "dropout": 0.2},
        conformer=True,
        options=[
            ("default", {}),
            ("batch-norm", {"norm": "batch"}),
            ("edge-features", {"norm": "layer", "use_edge_attr": True, "readout": "set2set"}),
        ],
        edge_perms=2,
        padded=Padded(
            builds=[(n, {"norm": n, "use_edge_attr": True}) for n in ("batch", "none")],
            padding=SPATIAL_PADDING,
            grad_tol=(1e-9, 1e-9),
        ),
        overfit=Overfit(
            {"hidden_dim": 64, "num_layers": 3, "norm": "batch", "readout": "mean"}, steps=150
        ),
        config="painn",
        config_check=_painn_config,
        cuda_build={"hidden_dim": 32, "norm": "batch"},
    ),
    EncoderSpec(
        "gvp",
        GVPEncoder,
        hidden=16,
        build={
            "hidden_vector_dim": 4,
            "edge_hidden_dim": 8,
            "num_layers": 2,
            "dropout": 0.2,
            "rbf_max": 5.0,
        },
        conformer=True,
        options=[
            ("default", {}),
            ("batch-norm", {"norm": "batch", "vector_gate": True}),
            ("no-node-vectors", {"node_vectors": "none", "norm": "none", "readout": "set2set"}),
        ],
        edge_perms=2,
        edgeless_readout="mean",
        padded=Padded(
            builds=[
                (n, {"hidden_vector_dim": 4, "num_layers": 2, "dropout": 0.0, "norm": n})
                for n in ("batch", "layer")
            ],
            padding=SPATIAL_PADDING,
            grad_tol=(1e-9, 1e-9),
        ),
        overfit=Overfit(
            {
                "hidden_dim": 64,
                "hidden_vector_dim": 8,
                "num_layers": 2,
                "dropout": 0.0,
                "norm": "batch",
            },
            steps=150,
        ),
        config="gvp",
        cuda_build={"hidden_dim": 32, "hidden_vector_dim": 8, "dropout": 0.0, "norm": "batch"},
    ),
]
SPATIAL = [spec for spec in SPECS if spec.conformer]


def cases(attribute: str, specs: list[EncoderSpec] = SPECS, spatial_options: bool = True) -> list:
    """``(spec, kwargs)`` parameters for every spec's cases of one property; the encoders
    that read coordinates are checked with each of their option sets instead (unless
    ``spatial_options`` is false)."""
    return [
        pytest.param(spec, kwargs, id=f"{spec.name}-{case_id}")
        for spec in specs
        for case_id, kwargs in (
            spec.options if spec.conformer and spatial_options else getattr(spec, attribute)
        )
    ]


def by_spec(specs: list[EncoderSpec] = SPECS) -> list:
    return [pytest.param(spec, id=spec.name) for spec in specs]


def data(request: pytest.FixtureRequest, spec: EncoderSpec) -> tuple[PackedGraphs, GraphBatch]:
    """The 11-graph test set (conftest.py) with coordinates when the encoder reads them."""
    kind = "3d" if spec.conformer else "2d"
    return request.getfixturevalue(f"packed_{kind}"), request.getfixturevalue(f"batch_{kind}")


def assert_nodes_follow(out, reference, perm: torch.Tensor) -> None:
    """Graph states unchanged; node states (and output coordinates) follow their nodes."""
    torch.testing.assert_close(out.graph, reference.graph, rtol=0, atol=ATOL)
    torch.testing.assert_close(out.node, reference.node[perm], rtol=0, atol=ATOL)
    if reference.pos is not None:
        torch.testing.assert_close(out.pos, reference.pos[perm], rtol=0, atol=ATOL)


# --- permutations -----------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "kwargs"), cases("node_perm"))
def test_node_permutation_within_graphs(request, spec: EncoderSpec, kwargs: dict) -> None:
    _, batch = data(request, spec)
    encoder = spec.make(batch, **kwargs)
    with torch.no_grad():
        reference = encoder(batch)
        for seed in range(spec.perm_seeds):
            perm = within_graph_permutation(batch, seed)
            assert not torch.equal(perm, torch.arange(batch.num_nodes))
            assert_nodes_follow(encoder(permute_batch_nodes(batch, perm)), reference, perm)


@pytest.mark.parametrize(("spec", "kwargs"), cases("across"))
def test_node_permutation_across_graphs(request, spec: EncoderSpec, kwargs: dict) -> None:
    # a permutation mixing graphs: graph membership travels with the node via batch.batch
    _, batch = data(request, spec)
    encoder = spec.make(batch, **kwargs)
    perm = torch.randperm(batch.num_nodes, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert_nodes_follow(encoder(permute_batch_nodes(batch, perm)), encoder(batch), perm)


@pytest.mark.parametrize(("spec", "kwargs"), cases("edges"))
def test_edge_permutation_leaves_outputs(request, spec: EncoderSpec, kwargs: dict) -> None:
    _, batch = data(request, spec)
    encoder = spec.make(batch, **kwargs)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        out = encoder(batch)
        for _ in range(spec.edge_perms):
            perm = torch.randperm(batch.num_edges, generator=generator)
            assert_same_output(encoder(permute_batch_edges(batch, perm)), out, ATOL, out.pos)


# --- batching ---------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "kwargs"), cases("alone"))
def test_graph_alone_equals_graph_in_batch(request, spec: EncoderSpec, kwargs: dict) -> None:
    packed, batch = data(request, spec)
    encoder = spec.make(batch, **kwargs)
    starts = torch.cumsum(packed.node_counts, 0) - packed.node_counts
    with torch.no_grad():
        together = encoder(batch)
        for k in (0, 5, 8, 9, 10):  # includes the single atom (8) and the salt (9)
            alone = encoder(packed.batch([k]).with_dtype(torch.float64))
            nodes = slice(int(starts[k]), int(starts[k] + packed.node_counts[k]))
            torch.testing.assert_close(alone.graph[0], together.graph[k], rtol=0, atol=ATOL)
            torch.testing.assert_close(alone.node, together.node[nodes], rtol=0, atol=ATOL)
            if together.pos is not None:
                torch.testing.assert_close(alone.pos, together.pos[nodes], rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    ("smiles", "untouched"), EDGELESS, ids=["atom", "salt", "atom-xenon-ethanol"]
)
@pytest.mark.parametrize(
    "spec", by_spec([spec for spec in SPECS if spec.edgeless_readout is not None])
)
def test_single_node_and_edgeless_graphs(
    request, spec: EncoderSpec, smiles: list[str], untouched: int
) -> None:
    _, batch = data(request, spec)
    encoder = spec.make(batch)
    small = MoleculeFeaturizer(conformer=spec.conformer).packed(smiles)
    small = small.batch(range(len(smiles))).with_dtype(torch.float64)
    with torch.no_grad():
        out = encoder(small)
        # change the last atom: nodes it has no path to (the first `untouched`) keep their state
        x = small.x.clone()
        x[-1] = torch.randn(x.shape[1], generator=torch.Generator().manual_seed(0))
        changed = encoder(replace(small, x=x))
    assert out.node.shape == (small.num_nodes, spec.hidden)
    assert out.graph.shape == (len(smiles), spec.hidden)
    assert bool(torch.isfinite(out.node).all()) and bool(torch.isfinite(out.graph).all())
    # an edgeless graph's readout pools its nodes' states alone
    first = out.node[small.batch == 0]
    pooled = first.sum(0) if spec.edgeless_readout == "sum" else first.mean(0)
    torch.testing.assert_close(out.graph[0], pooled, rtol=0, atol=1e-12)
    if spec.returns_pos:  # an atom without neighbours keeps its position
        torch.testing.assert_close(out.pos[0], small.pos[0], rtol=0, atol=0)
    if spec.locality:
        torch.testing.assert_close(changed.node[:untouched], out.node[:untouched], rtol=0, atol=0)
        assert (changed.node[-1] - out.node[-1]).abs().max() > 1e-3


@pytest.mark.parametrize(("spec", "kwargs"), cases("shapes", spatial_options=False))
def test_output_shapes(request, spec: EncoderSpec, kwargs: dict) -> None:
    _, batch = data(request, spec)
    encoder = spec.make(batch, **kwargs)
    with torch.no_grad():
        out = encoder(batch)
    hidden = spec.hidden
    width = 2 * hidden if spec.readout_of(kwargs) == "set2set" else hidden  # [q, r]
    assert encoder.out_dim == width
    assert spec.cls.requires_positions is spec.conformer
    assert out.node.shape == (batch.num_nodes, hidden)
    assert out.graph.shape == (batch.num_graphs, width) == (11, width)
    assert out.node.dtype == out.graph.dtype == torch.float64
    if spec.returns_pos:
        assert out.pos.shape == (batch.num_nodes, 3) and out.pos.dtype == torch.float64
    else:
        assert out.pos is None


@pytest.mark.parametrize(
    ("spec", "kwargs"),
    [
        pytest.param(spec, kwargs, id=f"{spec.name}-{case_id}")
        for spec in SPECS
        for case_id, kwargs in spec.padded.builds
    ],
)
def test_padded_batch_matches_plain_batch_in_training(
    request, spec: EncoderSpec, kwargs: dict
) -> None:
    # training mode (masked batch norm, no dropout: the two passes must see the same
    # masks); with gradients, the zero-length padding self-loops must neither change real
    # graphs nor put NaN into the gradients
    packed, _ = data(request, spec)
    indices = list(spec.padded.indices)
    plain = packed.batch(indices).with_dtype(torch.float64)
    padded = packed.batch(indices, padding=Padding(**spec.padded.padding))
    padded = padded.with_dtype(torch.float64)
    assert padded.num_nodes > plain.num_nodes and padded.num_edges > plain.num_edges
    torch.manual_seed(0)
    encoder = spec.cls(packed.node_dim, packed.edge_dim, hidden_dim=spec.hidden, **kwargs)
    encoder = encoder.double().train()
    outputs, grads = [], []
    for b in (plain, padded):
        if spec.padded.grad_tol is None:
            outputs.append(encoder(b))
            continue
        encoder.zero_grad()
        out = encoder(b)
        loss = out.graph[: len(indices)].square().sum()
        if out.pos is not None:
            loss = loss + out.pos[: plain.num_nodes].sum()
        loss.backward()
        outputs.append(out)
        grads.append([p.grad.clone() for p in encoder.parameters()])
    n = plain.num_nodes
    torch.testing.assert_close(
        outputs[1].graph[: len(indices)], outputs[0].graph, rtol=0, atol=ATOL
    )
    torch.testing.assert_close(outputs[1].node[:n], outputs[0].node, rtol=0, atol=ATOL)
    if spec.returns_pos:
        torch.testing.assert_close(outputs[1].pos[:n], outputs[0].pos, rtol=0, atol=ATOL)
    assert bool(torch.isfinite(outputs[1].graph).all())  # empty padding graphs too
    if spec.padded.grad_tol is not None:
        atol, rtol = spec.padded.grad_tol
        for a, b in zip(*grads, strict=True):
            assert bool(torch.isfinite(b).all())
            torch.testing.assert_close(b, a, atol=atol, rtol=rtol)


# --- fitting and building ----------------------------------------------------------------


@pytest.mark.parametrize("spec", by_spec())
def test_overfits_32_esol_molecules(spec: EncoderSpec, esol: pd.DataFrame) -> None:
    fit = spec.overfit
    frame = esol.iloc[:32]
    packed = MoleculeFeaturizer(conformer=spec.conformer).packed(frame["smiles"].tolist())
    y = torch.tensor(frame[ESOL_TARGET].to_numpy(), dtype=torch.float32).view(-1, 1)
    y = (y - y.mean()) / y.std()
    batch = packed.batch(range(32), y)
    torch.manual_seed(0)
    encoder = spec.cls(packed.node_dim, packed.edge_dim, **fit.build)
    head = nn.Linear(encoder.out_dim, 1)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    losses: list[float] = []
    for _ in range(fit.steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(head(encoder(batch).graph), batch.y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if fit.early_stop and losses[-1] < 0.05:
            break
    assert losses[0] > fit.first_loss_above  # starts far from the (standardised) targets
    first = next((step for step, value in enumerate(losses) if value < 0.05), None)
    assert first is not None, f"training MSE after {len(losses)} steps: {losses[-1]:.4f}"
    if fit.eval_check:  # and the fit holds in eval mode, with batch norm's running statistics
        encoder.eval()
        with torch.no_grad():
            mse = nn.functional.mse_loss(head(encoder(batch).graph), batch.y).item()
        assert mse < 0.05, f"eval-mode MSE {mse:.4f} (training MSE first < 0.05 at step {first})"


@pytest.mark.parametrize("spec", by_spec())
def test_builds_from_config(spec: EncoderSpec) -> None:
    cfg = OmegaConf.load(config_dir() / "encoder" / f"{spec.config}.yaml")
    featurizer = MoleculeFeaturizer(conformer=spec.conformer)
    assert (featurizer.node_dim, featurizer.edge_dim) == (135, 14)
    encoder = build(cfg, in_node_dim=featurizer.node_dim, in_edge_dim=featurizer.edge_dim)
    assert type(encoder) is spec.cls and encoder.requires_positions is spec.conformer
    readout = cfg.get("readout", None)
    assert encoder.out_dim == cfg.hidden_dim * (2 if readout == "set2set" else 1)
    if spec.config_check is not None:
        spec.config_check(encoder, cfg)
    with torch.no_grad():
        out = encoder.eval()(featurizer.packed(["CCO", "C"]).batch([0, 1]))
    assert out.graph.shape == (2, encoder.out_dim)
    if spec.returns_pos:
        assert out.pos.shape == (4, 3)


# --- encoders that read coordinates ---------------------------------------------------------


@pytest.mark.parametrize(("spec", "kwargs"), cases("options", SPATIAL, spatial_options=False))
def test_rotation_and_translation(batch_3d: GraphBatch, spec: EncoderSpec, kwargs: dict) -> None:
    encoder = spec.make(batch_3d, **kwargs)
    with torch.no_grad():
        out = encoder(batch_3d)
        if spec.returns_pos:  # coordinates really move, so their equivariance is not trivial
            assert (out.pos - batch_3d.pos).abs().max() > 0.05
        else:
            assert out.pos is None
        # invariant node and graph states; output coordinates rotate and translate
        assert_equivariant(encoder, batch_3d, atol=ATOL)


@pytest.mark.parametrize("spec", by_spec(SPATIAL))
def test_output_depends_on_the_geometry(batch_3d: GraphBatch, spec: EncoderSpec) -> None:
    # invariance is not blindness: a non-rigid change of the coordinates changes outputs
    encoder = spec.make(batch_3d)
    stretch = torch.tensor([1.3, 1.0, 1.0], dtype=torch.float64)
    stretched = replace(batch_3d, pos=batch_3d.pos * stretch)
    with torch.no_grad():
        assert (encoder(stretched).graph - encoder(batch_3d).graph).abs().max() > 1e-4


@pytest.mark.parametrize(("spec", "kwargs"), cases("options", SPATIAL, spatial_options=False))
def test_mirror_image_is_the_same(
    smiles_fixtures: SmilesFixtures, batch_3d: GraphBatch, spec: EncoderSpec, kwargs: dict
) -> None:
    # all three are E(3)-, not only SE(3)-invariant (no cross product anywhere): the
    # encoder tells L- from D-alanine only through the chiral tag of the node features
    packed = MoleculeFeaturizer(conformer=True).packed(list(smiles_fixtures.enantiomers))
    left, right = (packed.batch([k]).with_dtype(torch.float64) for k in (0, 1))
    encoder = spec.make(batch_3d, **kwargs)
    with torch.no_grad():
        assert_blind_to_mirror_images(encoder, left, right, atol=ATOL)


@pytest.mark.parametrize("spec", by_spec(SPATIAL))
def test_batch_without_coordinates_fails_clearly(batch_3d: GraphBatch, spec: EncoderSpec) -> None:
    encoder = spec.make(batch_3d)
    flat = MoleculeFeaturizer().packed(["CCO"]).batch([0]).with_dtype(torch.float64)
    with pytest.raises(ValueError, match=f"{spec.cls.__name__} needs node coordinates"):
        encoder(flat)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("spec", by_spec(SPATIAL))
def test_cuda_graph_training_step_matches_eager(packed_3d: PackedGraphs, spec: EncoderSpec) -> None:
    device = torch.device("cuda")
    batch = packed_3d.to(device).batch(range(11), padding=Padding(graphs=12, node_multiple=128))
    batch = batch.with_dtype(torch.float64)
    torch.manual_seed(0)
    encoder = spec.cls(packed_3d.node_dim, packed_3d.edge_dim, **spec.cuda_build)
    assert_cuda_graph_step_matches_eager(encoder.to(device).double(), batch, num_real=11)
