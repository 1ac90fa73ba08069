"""ProteinFeaturizer: layout, dihedrals against Biopython, edges against brute force,
invariance under rigid motions, parsing options on real and tiny structures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from Bio.PDB import PDBParser, PPBuilder
from helpers import random_rotation

from molgraph.errors import FeaturizationError, StructureError
from molgraph.featurize import ProteinFeaturizer, Residues, read_structure
from molgraph.featurize.residues import RESIDUE_TYPES
from molgraph.graphs import NODE_VECTORS

# a tiny fragment: residue 2 has CA altlocs (A 0.40, B 0.60) and no O; residue 3 has no CA
FRAGMENT = """\
ATOM      1  N   GLY A   1       0.000   0.000   0.000  1.00 10.00           N
ATOM      2  CA  GLY A   1       1.458   0.000   0.000  1.00 11.00           C
ATOM      3  C   GLY A   1       2.009   1.420   0.000  1.00 12.00           C
ATOM      4  O   GLY A   1       1.251   2.390   0.000  1.00 13.00           O
ATOM      5  N   ALA A   2       3.332   1.536   0.000  1.00 14.00           N
ATOM      6  CA AALA A   2       3.970   2.845   0.000  0.40 15.00           C
ATOM      7  CA BALA A   2       3.990   2.855   0.100  0.60 25.00           C
ATOM      8  C   ALA A   2       5.486   2.700   0.000  1.00 16.00           C
ATOM      9  N   SER A   3       6.100   3.800   0.000  1.00 17.00           N
ATOM     10  C   SER A   3       7.500   4.000   0.000  1.00 17.00           C
END
"""


@pytest.fixture(scope="module")
def proteins(shared_data: Path) -> Path:
    return shared_data / "proteins"


@pytest.fixture(scope="module")
def gb1(proteins: Path) -> Residues:
    return read_structure(proteins / "gb1_flip" / "2qmt.pdb")


@pytest.fixture(scope="module")
def fragment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdb") / "fragment.pdb"
    path.write_text(FRAGMENT)
    return path


def angles(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """φ, ψ, ω in radians ``[R, 3]`` from their (sin, cos) columns, and their masks."""
    sin_cos = x[:, 21:27].reshape(-1, 3, 2)
    return np.arctan2(sin_cos[..., 0], sin_cos[..., 1]), x[:, 27:30].astype(bool)


def test_widths_match_the_declared_layout(gb1: Residues) -> None:
    for options in ({}, {"bfactor": True}, {"edges": ("radius",), "rbf_bins": 8}):
        featurizer = ProteinFeaturizer(**options)
        arrays = featurizer.encode_residues(gb1)
        assert arrays["x"].shape == (56, featurizer.node_dim)
        assert arrays["edge_attr"].shape[1] == featurizer.edge_dim
        assert arrays["node_vectors"].shape == (56, featurizer.node_vector_dim, 3)
        assert arrays["pos"].dtype == np.float32
    assert ProteinFeaturizer().node_dim == 30
    assert ProteinFeaturizer().edge_dim == 16 + 65 + 1 + 3 + 4 + 2
    assert ProteinFeaturizer().residue_type_columns == slice(0, 21)


def test_layout_blocks_are_the_documented_columns() -> None:
    edges = ("knn", "radius", "sequence")
    layout = ProteinFeaturizer(edges=edges, rbf_bins=8, bfactor=True).layout
    assert {name: layout.node[name] for name, _ in layout.node.blocks} == {
        "residue_type": slice(0, 21),
        "dihedrals": slice(21, 27),
        "dihedral_mask": slice(27, 30),
        "bfactor": slice(30, 31),
    }
    assert {name: layout.edge[name] for name, _ in layout.edge.blocks} == {
        "distance_rbf": slice(0, 8),
        "separation": slice(8, 73),
        "same_chain": slice(73, 74),
        "direction": slice(74, 77),
        "orientation": slice(77, 81),
        "edge_rules": slice(81, 84),
    }
    assert layout.vectors == ("previous_ca", "next_ca", "virtual_cb")
    assert ProteinFeaturizer().layout.node["bfactor"] == slice(30, 30)  # empty block
    with pytest.raises(KeyError, match="no column block 'charge'"):
        layout.node["charge"]


def test_sequence_is_node_order_and_types_are_one_hot(gb1: Residues) -> None:
    featurizer = ProteinFeaturizer()
    assert gb1.sequence == "MQYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE"
    g = featurizer(gb1)
    assert g.num_nodes() == len(gb1.sequence) == len(gb1)
    types = g.ndata["x"][:, featurizer.residue_type_columns].argmax(1).tolist()
    assert "".join(RESIDUE_TYPES[t] for t in types) == gb1.sequence
    assert torch.allclose(g.ndata["pos"].double(), torch.from_numpy(gb1.ca), atol=1e-5)
    assert g.ndata[NODE_VECTORS].shape == (56, 3, 3)


def test_sequence_argument_substitutes_residue_types_only(gb1: Residues) -> None:
    featurizer = ProteinFeaturizer()
    variant = gb1.sequence[:38] + "IXA" + gb1.sequence[41:]  # V39I D40X G41A
    wild, mutant = featurizer.encode_residues(gb1), featurizer.encode_residues(gb1, variant)
    changed = np.flatnonzero((wild["x"] != mutant["x"]).any(1))
    assert changed.tolist() == [38, 39, 40]
    assert mutant["x"][39, 20] == 1.0  # X → the unknown column
    np.testing.assert_array_equal(wild["edge_attr"], mutant["edge_attr"])
    with pytest.raises(FeaturizationError, match="does not match the 56 residues"):
        featurizer.encode_residues(gb1, variant[:-1])


def test_phi_psi_match_biopython(proteins: Path, gb1: Residues) -> None:
    structure = PDBParser(QUIET=True).get_structure("2qmt", proteins / "gb1_flip" / "2qmt.pdb")
    expected = {}
    for peptide in PPBuilder().build_peptides(structure[0]):
        for residue, phi_psi in zip(peptide, peptide.get_phi_psi_list(), strict=True):
            expected[residue.id[1]] = phi_psi
    x = ProteinFeaturizer().encode_residues(gb1, dtype=np.float64)["x"]
    theta, mask = angles(x)
    assert len(expected) == 56
    for i, number in enumerate(gb1.numbers):
        for a, reference in enumerate(expected[int(number)]):
            assert mask[i, a] == (reference is not None)
            if reference is not None:
                delta = np.angle(np.exp(1j * (theta[i, a] - reference)))
                assert abs(delta) < 1e-4, (number, a)
    assert mask[:, 0].sum() == 55 and mask[:, 1].sum() == 55 and mask[:, 2].sum() == 55
    assert abs(np.degrees(theta[mask[:, 2], 2])).min() > 150  # all trans peptide bonds


def brute_force(ca: np.ndarray, k: int | None, radius: float | None) -> set[tuple[int, int]]:
    d = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    if k is not None:
        return {(int(j), i) for i in range(len(ca)) for j in np.argsort(d[i])[:k]}
    return {(int(j), int(i)) for i, j in zip(*np.nonzero(d <= radius), strict=True)}


@pytest.mark.parametrize(
    ("edges", "k", "radius"), [(("knn",), 30, None), (("radius",), None, 10.0), (("knn",), 7, None)]
)
def test_proximity_edges_equal_brute_force(proteins: Path, edges, k, radius) -> None:
    residues = read_structure(proteins / "robustness" / "2XHE.pdb.gz", chains="B")
    options = {"k": k} if k else {"radius": radius}
    arrays = ProteinFeaturizer(edges=edges, **options).encode_residues(residues)
    found = set(zip(arrays["src"].tolist(), arrays["dst"].tolist(), strict=True))
    assert len(found) == len(arrays["src"])  # no duplicate edges
    assert found == brute_force(residues.ca, k, radius)


def test_small_protein_knn_takes_every_other_node(fragment: Path) -> None:
    arrays = ProteinFeaturizer(edges=("knn",)).encode_residues(read_structure(fragment))
    assert sorted(zip(arrays["src"].tolist(), arrays["dst"].tolist(), strict=True)) == [
        (0, 1),
        (1, 0),
    ]


def test_edge_union_marks_the_rules_that_produced_each_edge(gb1: Residues) -> None:
    featurizer = ProteinFeaturizer(edges=("knn", "radius", "sequence"), k=5, sequence_window=2)
    arrays = featurizer.encode_residues(gb1)
    src, dst, rules = arrays["src"], arrays["dst"], arrays["edge_attr"][:, -3:]
    assert len(set(zip(src.tolist(), dst.tolist(), strict=True))) == len(src)
    assert (rules.sum(1) >= 1).all()
    sequence = rules[:, 2] == 1
    np.testing.assert_array_equal(sequence, (np.abs(src - dst) <= 2))
    knn_in_degree = np.bincount(dst[rules[:, 0] == 1], minlength=56)
    assert (knn_in_degree == 5).all()
    distance = np.linalg.norm(gb1.ca[src] - gb1.ca[dst], axis=1)
    np.testing.assert_array_equal(rules[:, 1] == 1, distance <= 10.0)


def test_edge_features_layout(gb1: Residues) -> None:
    featurizer = ProteinFeaturizer(edges=("sequence",), sequence_window=3)
    arrays = featurizer.encode_residues(gb1, dtype=np.float64)
    e, src, dst = arrays["edge_attr"], arrays["src"], arrays["dst"]
    separation = e[:, 16:81].argmax(1) - 32
    np.testing.assert_array_equal(separation, dst - src)
    assert (e[:, 81] == 1).all()  # same chain
    np.testing.assert_allclose(np.linalg.norm(e[:, 82:85], axis=1), 1.0, atol=1e-12)
    quaternion = e[:, 85:89]
    np.testing.assert_allclose(np.linalg.norm(quaternion, axis=1), 1.0, atol=1e-12)
    assert (quaternion[:, 0] >= 0).all()
    np.testing.assert_array_equal(e[:, 89], 1.0)  # produced by the sequence rule
    # the reverse edge holds the inverse rotation: conjugate quaternion (up to sign)
    reverse = {(s, d): i for i, (s, d) in enumerate(zip(src, dst, strict=True))}
    for i, (s, d) in enumerate(zip(src[:10], dst[:10], strict=True)):
        q, r = quaternion[i], quaternion[reverse[(d, s)]]
        np.testing.assert_allclose(r, q * [1, -1, -1, -1], atol=1e-12)


def moved(residues: Residues, rotation: np.ndarray, shift: np.ndarray) -> Residues:
    from dataclasses import replace

    return replace(residues, backbone=residues.backbone @ rotation.T + shift)


@pytest.mark.parametrize(
    "name", ["gb1_flip/2qmt.pdb", "robustness/pdb1ubi_ca.pdb", "robustness/2XHE.pdb.gz"]
)
def test_features_invariant_and_vectors_equivariant(proteins: Path, name: str) -> None:
    residues = read_structure(proteins / name)
    featurizer = ProteinFeaturizer(edges=("knn", "radius", "sequence"), bfactor=True)
    rotation = random_rotation(7).numpy()
    shift = np.array([13.0, -42.5, 7.25])
    before = featurizer.encode_residues(residues, dtype=np.float64)
    after = featurizer.encode_residues(moved(residues, rotation, shift), dtype=np.float64)
    for key in ("src", "dst", "node_counts", "edge_counts"):
        np.testing.assert_array_equal(after[key], before[key])
    np.testing.assert_allclose(after["x"], before["x"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(after["edge_attr"], before["edge_attr"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(after["pos"], before["pos"] @ rotation.T + shift, atol=1e-9)
    np.testing.assert_allclose(
        after["node_vectors"], before["node_vectors"] @ rotation.T, rtol=0, atol=1e-9
    )


def test_reflection_changes_the_frame_features(gb1: Residues) -> None:
    featurizer = ProteinFeaturizer()
    mirror = np.diag([-1.0, 1.0, 1.0])
    before = featurizer.encode_residues(gb1, dtype=np.float64)
    after = featurizer.encode_residues(moved(gb1, mirror, np.zeros(3)), dtype=np.float64)
    np.testing.assert_allclose(after["x"][:, 21:27:2], -before["x"][:, 21:27:2], atol=1e-9)
    assert not np.allclose(after["edge_attr"][:, 82:85], before["edge_attr"][:, 82:85])


def test_virtual_cbeta_matches_the_real_one(gb1: Residues, proteins: Path) -> None:
    structure = PDBParser(QUIET=True).get_structure("2qmt", proteins / "gb1_flip" / "2qmt.pdb")
    cb = {r.id[1]: r["CB"].coord for r in structure[0]["A"] if "CB" in r}
    vec = ProteinFeaturizer().encode_residues(gb1, dtype=np.float64)["node_vectors"][:, 2]
    for i, number in enumerate(gb1.numbers):
        if int(number) in cb:
            real = cb[int(number)] - gb1.ca[i]
            assert np.dot(real / np.linalg.norm(real), vec[i]) > 0.95  # within 18°
        else:  # glycine: the ideal C-beta still exists
            assert np.isclose(np.linalg.norm(vec[i]), 1.0)


def test_fragment_altloc_missing_atoms_and_masks(fragment: Path) -> None:
    residues = read_structure(fragment)
    assert residues.sequence == "GA"  # SER 3 has no CA: dropped with a note
    assert any("without a CA atom: A3 SER" in note for note in residues.notes)
    # the B altloc (occupancy 0.60) of the CA
    np.testing.assert_allclose(residues.backbone[1, 1], [3.990, 2.855, 0.100], atol=1e-6)
    assert residues.bfactors.tolist() == [11.0, 25.0]
    assert np.isnan(residues.backbone[1, 3]).all() and np.isfinite(residues.backbone[1, :3]).all()
    x = ProteinFeaturizer(edges=("sequence",)).encode_residues(residues)["x"]
    _, mask = angles(x)
    assert mask.tolist() == [[False, True, True], [True, False, False]]


def test_chain_and_model_selection(proteins: Path) -> None:
    both = read_structure(proteins / "robustness" / "2XHE.pdb.gz")
    b = read_structure(proteins / "robustness" / "2XHE.pdb.gz", chains="B")
    ab = read_structure(proteins / "robustness" / "2XHE.pdb.gz", chains=["A", "B"])
    assert set(b.chain_ids) == {"B"} and len(ab) == len(both) > len(b)
    assert b.sequence == both.sequence[-len(b) :]
    with pytest.raises(StructureError, match="chain 'Z' not in the file"):
        read_structure(proteins / "robustness" / "2XHE.pdb.gz", chains="Z")
    nmr = proteins / "robustness" / "1l2y.pdb.gz"
    first, last = read_structure(nmr), read_structure(nmr, model=37)
    assert first.sequence == last.sequence == "NLYIQWLKDGGPSSGRPPPS"
    assert not np.allclose(first.backbone, last.backbone)
    with pytest.raises(StructureError, match="model 38 not in the file"):
        read_structure(nmr, model=38)
    featurizer = ProteinFeaturizer(model=37)
    np.testing.assert_allclose(featurizer(nmr).ndata["pos"].numpy(), last.ca, atol=1e-5)


def test_encode_reports_one_error_per_item(proteins: Path, tmp_path: Path) -> None:
    bad = tmp_path / "nothing.pdb"
    bad.write_text("HEADER    EMPTY\nEND\n")
    items = [
        proteins / "gb1_flip" / "2qmt.pdb",
        bad,
        tmp_path / "missing.cif",
        tmp_path / "notes.txt",
        (proteins / "robustness" / "2XHE.pdb.gz", ["B"]),
        42,
    ]
    arrays, errors = ProteinFeaturizer().encode(items)
    assert [e is None for e in errors] == [True, False, False, False, True, False]
    assert all(isinstance(e, StructureError) for e in errors[1:4])
    assert "model 0 not in the file (0 models)" in errors[1].reason
    assert "cannot be read" in errors[2].reason and "unknown file type" in errors[3].reason
    assert arrays["node_counts"].tolist() == [56, 220]  # chain B: 222 residues, 2 waters
    assert len(arrays["x"]) == len(arrays["pos"]) == len(arrays["node_vectors"]) == 276
    empty, errors = ProteinFeaturizer().encode([bad])
    assert empty["x"].shape == (0, 30) and empty["node_vectors"].shape == (0, 3, 3)


def test_recipe_round_trip() -> None:
    featurizer = ProteinFeaturizer(chains=("A",), edges=("radius",), radius=8.0, bfactor=True)
    recipe = json.loads(json.dumps(featurizer.to_dict()))
    assert ProteinFeaturizer.from_dict(recipe) == featurizer
    with pytest.raises(ValueError, match="not a protein featurizer recipe"):
        ProteinFeaturizer.from_dict({"kind": "molecule"})
    with pytest.raises(ValueError, match="edges must be distinct choices"):
        ProteinFeaturizer(edges=("knn", "delaunay"))
