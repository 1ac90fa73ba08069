"""Offline tests of data_prep.moleculenet against the real MoleculeNet copies in shared/data."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import urllib.request
from pathlib import Path

import pytest

from data_prep import moleculenet as mn

MOLECULES = Path("/work/shared/data/molecules")

# Unparseable SMILES with RDKit 2026.09 and sha256 of the plain CSVs (shared/data/MANIFEST.md;
# these are GitHub-mirror copies, so the hashes are not pinned in SOURCES).
EXPECTED = {
    "esol": (0, "8c06a76f0c6487d29ab0f903e6a7a7139f189ab3c1178f159c8be8964602f189"),
    "freesolv": (0, "ab5895d914ee87cb563bd7b9611e869527bba45bec6b014d34dc495a0f9dcb72"),
    "lipophilicity": (0, "aed41590cb30609d51d8e08ad3ff06495a76e80e211358801f596b10da69bacd"),
    "bbbp": (11, "3c7436fad5044f5f5cde11798e02ec488761509939f66b247692f5a32a41d2f1"),
    "bace": (0, "f3fb9ce90bada3e2bd6148b0df13f8f8145a357bf87df0dd5b391ede974fc737"),
    "clintox": (4, "9999816e760dd838358b5d88e81cea2fc062be4458ffa412ceecdba4f88a67b6"),
    "hiv": (7, "9ffa7fe57dc86c342627ee1d5255e937e2ab812393c73c4d16c697022f6e1d22"),
}

pytestmark = pytest.mark.skipif(not MOLECULES.is_dir(), reason=f"{MOLECULES} not present")


def local_copy(source: mn.Source) -> Path:
    """The shared copy of ``source``, plain or gzipped."""
    plain = MOLECULES / source.filename
    return plain if plain.exists() else plain.with_name(plain.name + ".gz")


def pinned(name: str, url: str | None = None) -> mn.Source:
    """``SOURCES[name]`` with the mirror's sha256 pinned and, optionally, another URL."""
    source = mn.SOURCES[name]
    return dataclasses.replace(source, sha256=EXPECTED[name][1], url=url or source.url)


@pytest.fixture
def esol_csv(tmp_path: Path) -> Path:
    return shutil.copy(MOLECULES / "delaney-processed.csv", tmp_path / "esol_src.csv")


@pytest.fixture
def count_fetches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    urls: list[str] = []
    real = urllib.request.urlopen

    def counting(url, *args, **kwargs):
        urls.append(url)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", counting)
    return urls


def test_sources_cover_every_local_copy():
    assert set(mn.SOURCES) == set(EXPECTED)
    assert all(local_copy(s).exists() for s in mn.SOURCES.values())
    assert mn.SOURCES["clintox"].url.endswith("/clintox.csv.gz")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_verify_real_files(name: str):
    source = pinned(name)
    report = mn.verify(local_copy(source), source)  # .gz copies are read transparently
    assert report.rows == source.expected_rows
    assert report.unparseable_smiles == EXPECTED[name][0]
    assert report.checksum_verified
    assert report.sha256 == EXPECTED[name][1]


def test_unpinned_source_reports_sha256_without_verifying(esol_csv: Path):
    report = mn.verify(esol_csv, mn.SOURCES["esol"])
    assert (report.rows, report.checksum_verified) == (1128, False)
    assert report.sha256 == EXPECTED["esol"][1]


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_download_from_file_url(tmp_path: Path, count_fetches: list[str], gzipped: bool):
    src = MOLECULES / "SAMPL.csv"
    if gzipped:
        served = tmp_path / "SAMPL.csv.gz"
        served.write_bytes(gzip.compress(src.read_bytes()))
    else:
        served = src
    source = pinned("freesolv", url=served.as_uri())
    dest = tmp_path / "dest"

    path = mn.download(source, dest)
    assert path == dest / "SAMPL.csv"
    assert path.read_bytes() == src.read_bytes()  # plain CSV even from a gzipped response
    assert sorted(p.name for p in dest.iterdir()) == ["SAMPL.csv"]  # no temporary left

    mtime = path.stat().st_mtime_ns
    assert mn.download(source, dest) == path
    assert count_fetches == [served.as_uri()]  # second call found a valid file: no fetch
    assert path.stat().st_mtime_ns == mtime


def test_download_replaces_invalid_existing_file(tmp_path: Path, count_fetches: list[str]):
    source = pinned("freesolv", url=(MOLECULES / "SAMPL.csv").as_uri())
    (tmp_path / "SAMPL.csv").write_text("smiles,expt\nC,1.0\n")
    mn.download(source, tmp_path)
    assert len(count_fetches) == 1
    assert mn.verify(tmp_path / "SAMPL.csv", source).rows == 642


def test_truncated_file_fails_row_count(tmp_path: Path, esol_csv: Path):
    lines = esol_csv.read_text().splitlines(keepends=True)
    truncated = tmp_path / "truncated.csv"
    truncated.write_text("".join(lines[:101]))
    with pytest.raises(mn.VerificationError, match=r"expected 1128 rows for esol, found 100"):
        mn.verify(truncated, mn.SOURCES["esol"])


def test_missing_target_column_is_named(tmp_path: Path):
    clintox = tmp_path / "clintox.csv"
    text = (MOLECULES / "clintox.csv").read_text()
    clintox.write_text(text.replace("CT_TOX", "toxic", 1))
    with pytest.raises(mn.VerificationError, match=r"missing column\(s\) \['CT_TOX'\]") as err:
        mn.verify(clintox, mn.SOURCES["clintox"])
    assert "['smiles', 'FDA_APPROVED', 'toxic']" in str(err.value)


def test_wrong_sha256_raises_and_leaves_nothing(tmp_path: Path, esol_csv: Path):
    source = dataclasses.replace(mn.SOURCES["esol"], url=esol_csv.as_uri(), sha256="0" * 64)
    dest = tmp_path / "dest"
    with pytest.raises(mn.ChecksumError) as err:
        mn.download(source, dest)
    assert (err.value.expected, err.value.actual) == ("0" * 64, EXPECTED["esol"][1])
    assert ".part" in str(err.value) and "0" * 64 in str(err.value)
    assert list(dest.iterdir()) == []


def test_failed_fetch_names_url_and_leaves_nothing(tmp_path: Path):
    url = (tmp_path / "absent.csv").as_uri()
    source = dataclasses.replace(mn.SOURCES["esol"], url=url)
    with pytest.raises(OSError, match=f"could not fetch {url}"):
        mn.download(source, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_main_check_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert mn.main(["esol", "--dest", str(tmp_path), "--check-only"]) == 1
    assert capsys.readouterr().out.startswith("esol           FAILED: [Errno 2] No such file")

    shutil.copy(MOLECULES / "delaney-processed.csv", tmp_path)
    assert mn.main(["esol", "--dest", str(tmp_path), "--check-only"]) == 0
    out = capsys.readouterr().out
    assert "rows=1128" in out and "unparseable_smiles=0" in out and "sha256 unpinned" in out

    (tmp_path / "delaney-processed.csv").write_text("smiles\nC\n")
    assert mn.main(["esol", "--dest", str(tmp_path), "--check-only"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_main_rejects_unknown_name(tmp_path: Path):
    with pytest.raises(SystemExit) as exit_:
        mn.main(["tox21", "--dest", str(tmp_path), "--check-only"])
    assert exit_.value.code == 2
