"""Streaming inputs: chunks that add up to what read_molecules reads, exact resumption,
one-line typed errors before any work, delimiter detection, standard input."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from rdkit import Chem

from molgraph.data.stream import InputFormat, count_hint, inspect_input, read_chunks
from molgraph.errors import InputError
from molgraph.io import read_molecules

MOLECULES = Path("/work/shared/data/molecules")
# A record RDKit cannot read, kept as a row with its reason.
BROKEN_RECORD = (
    "broken\n  junk\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\nnot an atom\nM  END\n$$$$\n"
)


def _bbbp_head(rows: int) -> pd.DataFrame:
    return pd.read_csv(MOLECULES / "BBBP.csv", dtype=str, keep_default_na=False, nrows=rows)


def _write_sdf(path: Path, table: pd.DataFrame) -> None:
    """One record per row (name, SD property ``p_np``), the broken record third."""
    buffer = io.StringIO()
    writer = Chem.SDWriter(buffer)
    for number, row in enumerate(table.itertuples()):
        if number == 2:
            writer.flush()
            buffer.write(BROKEN_RECORD)
        mol = Chem.MolFromSmiles(row.smiles)
        if mol is None:
            continue
        mol.SetProp("_Name", row.name)
        if number % 3:  # SD properties that only some records have
            mol.SetProp("p_np", row.p_np)
        writer.write(mol)
    writer.close()
    path.write_text(buffer.getvalue())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first 40 BBBP molecules as every supported kind of file."""
    folder = tmp_path_factory.mktemp("inputs")
    table = _bbbp_head(40)
    paths = {k: folder / f"bbbp.{k}" for k in ("csv", "tsv", "csv.gz", "smi", "sdf", "sdf.gz")}
    table.to_csv(paths["csv"], index=False)
    table.to_csv(paths["tsv"], sep="\t", index=False)
    table.to_csv(paths["csv.gz"], index=False, compression="gzip")
    lines = [f"{s} {n}" for s, n in zip(table.smiles, table.num, strict=True)]
    lines[5:5] = ["", "  ", "CCO"]  # blank lines are rows too, an id is optional
    paths["smi"].write_bytes("\r\n".join(lines).encode())
    _write_sdf(paths["sdf"], table)
    paths["sdf.gz"].write_bytes(gzip.compress(paths["sdf"].read_bytes()))
    return paths


def _concat(chunks: list[pd.DataFrame], like: pd.DataFrame) -> pd.DataFrame:
    """Chunks as one table with the columns of ``like`` (SD properties differ by chunk)."""
    table = pd.concat(chunks)
    if "mol" not in like.columns:
        return table
    table = table.reindex(columns=like.columns)  # properties no record of the chunks has
    properties = [c for c in like.columns if c not in ("id", "smiles", "mol", "parse_error")]
    table[properties] = table[properties].astype(object).fillna("").astype(str)
    table["mol"] = [None if m is None else Chem.MolToSmiles(m) for m in table["mol"]]
    return table


def _expected(path: Path) -> pd.DataFrame:
    table = read_molecules(path)
    if "mol" in table.columns:
        table["mol"] = [None if m is None else Chem.MolToSmiles(m) for m in table["mol"]]
    return table


@pytest.mark.parametrize("kind", ["csv", "tsv", "csv.gz", "smi", "sdf", "sdf.gz"])
@pytest.mark.parametrize("chunk_rows", [1, 7, 40, 1000])
def test_chunks_add_up_to_read_molecules(inputs: dict, kind: str, chunk_rows: int) -> None:
    fmt = inspect_input(inputs[kind])
    expected = _expected(inputs[kind] if kind != "sdf.gz" else inputs["sdf"])
    chunks = list(read_chunks(fmt, chunk_rows))
    assert all(len(c) <= chunk_rows for c in chunks[:-1]) and len(chunks[-1]) <= chunk_rows
    assert [len(c) for c in chunks[:-1]] == [chunk_rows] * (len(chunks) - 1)
    for number, chunk in enumerate(chunks):
        assert chunk.index.equals(
            pd.RangeIndex(number * chunk_rows, number * chunk_rows + len(chunk))
        )
    pd.testing.assert_frame_equal(_concat(chunks, expected), expected)


@pytest.mark.parametrize("kind", ["csv", "tsv", "csv.gz", "smi", "sdf"])
def test_skip_rows_resumes_exactly(inputs: dict, kind: str) -> None:
    fmt = inspect_input(inputs[kind])
    expected = _expected(inputs[kind])
    for skip in (1, 6, 13, len(expected) - 1, len(expected), len(expected) + 5):
        rest = list(read_chunks(fmt, 6, skip_rows=skip))
        if skip >= len(expected):
            assert rest == []
            continue
        assert rest[0].index[0] == skip
        pd.testing.assert_frame_equal(_concat(rest, expected), expected.iloc[skip:])


@pytest.mark.parametrize(
    ("name", "chunk_rows"),
    [("BBBP.csv", 333), ("delaney-processed.csv", 1000), ("HIV.csv.gz", 4096)],
)
def test_real_files(name: str, chunk_rows: int) -> None:
    path = MOLECULES / name
    fmt = inspect_input(path)
    assert fmt.kind == "table" and fmt.separator == "," and fmt.smiles_column in fmt.columns
    chunks = list(read_chunks(fmt, chunk_rows))
    pd.testing.assert_frame_equal(pd.concat(chunks), read_molecules(path))
    assert count_hint(fmt) == path.stat().st_size == chunks[-1].attrs["bytes_read"]


def test_what_inspection_reports(inputs: dict) -> None:
    bbbp = inspect_input(MOLECULES / "BBBP.csv")
    assert (bbbp.kind, bbbp.separator, bbbp.compression) == ("table", ",", None)
    assert (bbbp.columns, bbbp.smiles_column) == (("num", "name", "p_np", "smiles"), "smiles")
    gz = inspect_input(inputs["csv.gz"])
    assert (gz.kind, gz.compression) == ("table", "gzip")
    smi = inspect_input(inputs["smi"])
    assert (smi.kind, smi.columns, smi.smiles_column) == ("smi", ("smiles", "id"), "smiles")
    assert inspect_input(inputs["sdf.gz"]).kind == "sdf"
    assert inspect_input(inputs["sdf"]).columns == ()


def test_a_smiles_column_of_another_name_is_copied(tmp_path: Path) -> None:
    path = tmp_path / "lib.CSV"  # suffixes are case-insensitive
    path.write_text("\ufeffid,structure\na,CCO\n\nb,c1ccccc1\n")  # a BOM, a blank line
    fmt = inspect_input(path, smiles_column="structure")
    (chunk,) = read_chunks(fmt)
    assert chunk.columns.tolist() == ["id", "structure", "smiles"]
    assert chunk["smiles"].tolist() == ["CCO", "c1ccccc1"]
    assert inspect_input(path).smiles_column == "structure"  # detected by content


@pytest.mark.parametrize(
    ("name", "text", "separator"),
    [
        ("semicolons.csv", "id;smiles;logS\na;CCO;-0.1\nb;c1ccccc1;-2.0\nc;CC(=O)O;0.3\n", ";"),
        ("tabs.csv", "id\tsmiles\tlogS\na\tCCO\t-0.1\nb\tc1ccccc1\t-2.0\nc\tCC(=O)O\t0.3\n", "\t"),
        ("commas.tsv", "id,smiles,logS\na,CCO,-0.1\nb,c1ccccc1,-2.0\nc,CC(=O)O,0.3\n", ","),
    ],
)
def test_a_misnamed_delimiter_is_detected(
    tmp_path: Path, name: str, text: str, separator: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    fmt = inspect_input(path)
    assert fmt.separator == separator and fmt.columns == ("id", "smiles", "logS")
    chunks = list(read_chunks(fmt, 2))
    expected = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(pd.concat(chunks), expected)


def test_a_one_column_table_keeps_its_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"  # CXSMILES hold ';' and ',' but split no header
    path.write_text("smiles\nCCO |$a;b;$|\nCC |$c;d$|\n")
    fmt = inspect_input(path)
    assert (fmt.separator, fmt.columns) == (",", ("smiles",))


def _error(path: object, smiles_column: str | None = None) -> InputError:
    with pytest.raises(InputError) as caught:
        inspect_input(path, smiles_column)
    error = caught.value
    assert error.path == str(path) and str(error) == f"{path}: {error.reason}"
    assert "\n" not in str(error)
    return error


def test_errors_name_the_file_and_the_reason(tmp_path: Path) -> None:
    assert "no such file" in _error(tmp_path / "absent.csv").reason
    (tmp_path / "folder.csv").mkdir()
    assert "is a directory" in _error(tmp_path / "folder.csv").reason
    (tmp_path / "empty.csv").write_bytes(b"")
    assert _error(tmp_path / "empty.csv").reason == "is empty"
    (tmp_path / "blank.smi").write_text("\n \n")
    assert "only blank lines" in _error(tmp_path / "blank.smi").reason
    (tmp_path / "header.csv").write_text("id,smiles\n\n")
    assert "no data rows" in _error(tmp_path / "header.csv").reason
    (tmp_path / "latin1.csv").write_bytes("name,smiles\ncafé,CCO\n".encode("latin1"))
    reason = _error(tmp_path / "latin1.csv").reason
    assert "not UTF-8" in reason and "offset 15" in reason and "iconv -f latin1 -t utf-8" in reason
    (tmp_path / "table.xlsx").write_text("smiles\nCCO\n")
    reason = _error(tmp_path / "table.xlsx").reason
    assert "unsupported file type" in reason and ".csv.gz" in reason and ".sdf" in reason


def test_errors_about_the_smiles_column(tmp_path: Path, inputs: dict) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,smiles\na,CCO\n")
    reason = _error(path, "structure").reason
    assert reason == "no column 'structure'; columns present: 'id', 'smiles'"
    path.write_text("id,value\na,1.0\nb,2.0\n")
    assert "found no SMILES column" in _error(path).reason
    path.write_text("id,structure,smiles\na,CCO,CCO\n")
    assert "would overwrite" in _error(path, "structure").reason
    assert "tables only" in _error(inputs["smi"], "smiles").reason
    path.write_text("id|smiles\na|CCO\n")  # no delimiter splits it: one column, no SMILES
    assert "found no SMILES column" in _error(path).reason


def test_errors_about_compression(tmp_path: Path) -> None:
    (tmp_path / "plain.csv.gz").write_text("smiles\nCCO\n")
    assert "not gzip-compressed" in _error(tmp_path / "plain.csv.gz").reason
    (tmp_path / "packed.csv").write_bytes(gzip.compress(b"smiles\nCCO\n"))
    assert "name it packed.csv.gz" in _error(tmp_path / "packed.csv").reason


def test_errors_past_the_sample_are_typed(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    good = "".join(f"m{i},CCO\n" for i in range(20_000))  # past the 64 KiB sample
    path.write_bytes(f"id,smiles\n{good}café,CCO\n".encode("latin1"))
    fmt = inspect_input(path)
    with pytest.raises(InputError, match=r"late\.csv: is not UTF-8 text .* iconv"):
        list(read_chunks(fmt, 5000))
    path.write_text(f"id,smiles\n{good}x,CCO,extra\n")  # a row with a field too many
    with pytest.raises(
        InputError, match=r"late\.csv: cannot be read from input row 20000 on: .*fields"
    ):
        list(read_chunks(inspect_input(path), 5000))
    path = tmp_path / "late.smi"
    path.write_bytes(f"{good}café CCO\n".encode("latin1"))
    with pytest.raises(InputError, match=rf"offset {len(good) + 3}"):
        list(read_chunks(inspect_input(path), 5000))


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(data)))


@pytest.mark.parametrize("compress", [False, True])
def test_standard_input_is_replayed(monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
    path = MOLECULES / "BBBP.csv"  # over 64 KiB: the sample and the rest
    data = path.read_bytes()
    _stdin(monkeypatch, gzip.compress(data) if compress else data)
    fmt = inspect_input("-")
    assert (fmt.kind, fmt.separator, fmt.columns) == ("table", ",", inspect_input(path).columns)
    assert fmt.compression == ("gzip" if compress else None) and count_hint(fmt) is None
    chunks = list(read_chunks(fmt, 500))
    pd.testing.assert_frame_equal(pd.concat(chunks), read_molecules(path))
    assert chunks[-1].attrs["bytes_read"] == len(gzip.compress(data) if compress else data)
    with pytest.raises(InputError, match="only once"):
        list(read_chunks(fmt))


def test_standard_input_kinds_are_sniffed(monkeypatch: pytest.MonkeyPatch, inputs: dict) -> None:
    for kind, text in [
        ("smi", b"CCO\tethanol\nc1ccccc1 benzene\n"),
        ("table", b"id;smiles\na;C\n"),
    ]:
        _stdin(monkeypatch, text)
        assert inspect_input("-").kind == kind
    _stdin(monkeypatch, inputs["sdf"].read_bytes())
    fmt = inspect_input("-")
    assert fmt.kind == "sdf"
    expected = _expected(inputs["sdf"])
    pd.testing.assert_frame_equal(_concat(list(read_chunks(fmt, 4)), expected), expected)
    _stdin(monkeypatch, b"")
    assert _error("-").reason == "standard input is empty"


def test_a_large_table_is_read_lazily_in_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "library.csv"
    rows = 200_000
    with path.open("w") as file:
        file.write("id,smiles\n")
        file.writelines(f"m{i},{'C' * (1 + i % 12)}O\n" for i in range(rows))
    fmt = inspect_input(path)
    size = count_hint(fmt)
    assert size == path.stat().st_size
    chunks = read_chunks(fmt, 1000)
    first = next(chunks)
    assert len(first) == 1000 and first.attrs["bytes_read"] < size / 4  # not read through
    seen, last = len(first), first
    for chunk in chunks:  # one chunk at a time, never the whole table
        assert len(chunk) <= 1000 and chunk.index[0] == seen
        seen, last = seen + len(chunk), chunk
    assert seen == rows and last["id"].iloc[-1] == f"m{rows - 1}"
    assert last.attrs["bytes_read"] == size


def test_arguments_are_checked(inputs: dict) -> None:
    fmt = inspect_input(inputs["csv"])
    assert isinstance(fmt, InputFormat)
    with pytest.raises(ValueError, match="chunk_rows"):
        read_chunks(fmt, 0)
    with pytest.raises(ValueError, match="skip_rows"):
        read_chunks(fmt, 10, -1)
