"""Reading molecule files: every row kept, SMILES column found, typed errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from rdkit import Chem, rdBase

from molgraph.errors import MolgraphError
from molgraph.io import find_smiles_column, read_molecules, write_table

DATA = Path("/work/shared/data")
BBBP = DATA / "molecules" / "BBBP.csv"
BACE = DATA / "molecules" / "bace.csv.gz"
QM9_MINI = DATA / "molecules3d" / "qm9_mini.sdf"


def sdf_block(smiles: str, name: str, value: str) -> str:
    mol = Chem.MolFromSmiles(smiles)
    mol.SetProp("_Name", name)
    mol.SetProp("value", value)
    return f"{Chem.MolToMolBlock(mol)}>  <value>\n{value}\n\n$$$$\n"


CORRUPT_RECORD = (
    "broken\n  junk\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\nnot an atom\nM  END\n$$$$\n"
)


def test_bbbp_keeps_every_row() -> None:
    frame = read_molecules(BBBP)
    assert list(frame.columns) == ["num", "name", "p_np", "smiles"]
    assert len(frame) == 2050
    assert frame.loc[0, "smiles"] == "[Cl].CC(C)NCC(O)COc1cccc2ccccc12"
    assert frame.loc[0, "p_np"] == "1"  # cells stay strings as read
    with rdBase.BlockLogs():
        invalid = sum(Chem.MolFromSmiles(s) is None for s in frame["smiles"])
    assert invalid == 11


def test_bace_smiles_column_named_mol() -> None:
    frame = read_molecules(BACE)
    assert len(frame) == 1513
    assert frame.columns[0] == "mol"
    assert frame["smiles"].equals(frame["mol"].rename("smiles"))
    assert frame.loc[0, "smiles"].startswith("O1CC[C@@H](NC(=O)")


def test_smiles_column_found_by_content() -> None:
    table = pd.DataFrame(
        {"id": ["a", "b", "c"], "label": ["1", "0", ""], "x": ["CCO", "", "c1ccccc1"]}
    )
    assert find_smiles_column(table, Path("t.csv")) == "x"


def test_tsv_with_explicit_column_and_empty_cells(tmp_path: Path) -> None:
    path = tmp_path / "in.tsv"
    path.write_text("name\tstructure\tnote\nethanol\tCCO\t\nwater\tO\tsolvent\nnothing\t\t\n")
    frame = read_molecules(path, smiles_column="structure")
    assert frame["smiles"].tolist() == ["CCO", "O", ""]
    assert frame["note"].tolist() == ["", "solvent", ""]


def test_wrong_smiles_column_lists_columns() -> None:
    with pytest.raises(MolgraphError, match=r"no column 'SMILES'.*'num', 'name', 'p_np', 'smiles'"):
        read_molecules(BBBP, smiles_column="SMILES")


def test_no_smiles_column_suggests_option(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(MolgraphError, match="--smiles-column"):
        read_molecules(path)


def test_smi_file_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "in.smi"
    path.write_text("CCO ethanol\nnot_a_smiles bad one\n\nc1ccccc1\n")
    frame = read_molecules(path)
    assert list(frame.columns) == ["smiles", "id"]
    assert frame["smiles"].tolist() == ["CCO", "not_a_smiles", "", "c1ccccc1"]
    assert frame["id"].tolist() == ["ethanol", "bad one", "", ""]


def test_qm9_mini_sdf() -> None:
    frame = read_molecules(QM9_MINI)
    assert len(frame) == 21
    assert frame["id"].tolist()[:3] == ["gdb_1", "gdb_2", "gdb_3"]
    assert frame["smiles"].tolist()[:3] == ["C", "N", "O"]
    assert (frame["smiles"] != "").all()
    assert (frame["parse_error"] == "").all()
    assert frame.loc[0, "mol"].GetNumConformers() == 1


@pytest.mark.parametrize("gzipped", [False, True])
def test_sdf_keeps_corrupt_record(tmp_path: Path, gzipped: bool) -> None:
    text = sdf_block("CCO", "first", "1.5") + CORRUPT_RECORD + sdf_block("c1ccccc1", "third", "")
    path = tmp_path / ("in.sdf.gz" if gzipped else "in.sdf")
    if gzipped:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    frame = read_molecules(path)
    assert list(frame.columns) == ["id", "value", "smiles", "mol", "parse_error"]
    assert frame["id"].tolist() == ["first", "", "third"]
    assert frame["smiles"].tolist() == ["CCO", "", "c1ccccc1"]
    assert frame["value"].tolist() == ["1.5", "", ""]
    assert frame.loc[1, "mol"] is None
    assert frame["parse_error"].tolist() == ["", "RDKit could not read SDF record 2", ""]


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(MolgraphError, match=r"in\.xlsx.*\.csv.*\.sdf\.gz"):
        read_molecules(tmp_path / "in.xlsx")


def test_write_table_drops_mol_column(tmp_path: Path) -> None:
    frame = read_molecules(QM9_MINI).head(2)
    write_table(frame, tmp_path / "out.tsv")
    assert (tmp_path / "out.tsv").read_text().splitlines() == [
        "id\tsmiles\tparse_error",
        "gdb_1\tC\t",
        "gdb_2\tN\t",
    ]
