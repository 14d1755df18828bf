"""How the store's tables are written: queried ones uncompressed, archives zstd."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from client.store import SiteStore


def _codecs(table: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each column's compression and encodings in the table's one data file."""
    (file,) = table.glob("*.parquet")
    group = pq.ParquetFile(file).metadata.row_group(0)
    columns = (group.column(i) for i in range(group.num_columns))
    return {c.path_in_schema: (c.compression, c.encodings) for c in columns}


@pytest.mark.parametrize("lazy", [False, True])
def test_queried_tables_uncompressed_archives_zstd(tmp_path: Path, *, lazy: bool) -> None:
    frame = pl.DataFrame({"age": [40, 51, 62], "bp": [1.5, 2.5, None], "site": ["a", "b", "a"]})
    store = SiteStore(tmp_path)
    rows = frame.lazy() if lazy else frame
    store.write("clean", rows, {"operation": "test"}, rows=3)
    store.write("quarantine", rows, {"operation": "test"}, archive=True, rows=3)
    clean = _codecs(store.table_path("clean"))
    assert {compression for compression, _ in clean.values()} == {"UNCOMPRESSED"}
    archived = _codecs(store.table_path("quarantine"))
    assert {compression for compression, _ in archived.values()} == {"ZSTD"}
    assert store.read("clean").equals(frame)


@pytest.mark.parametrize("lazy", [False, True])
def test_a_written_file_is_hashed_as_written_not_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, lazy: bool
) -> None:
    """The checksum recorded at commit is the file's sha256, from the bytes as they were
    written: the file is not read again for it."""
    import hashlib

    from client import integrity

    def read_back(path: Path) -> str:
        raise AssertionError(f"{path} was read back to be hashed")

    monkeypatch.setattr(integrity, "sha256_file", read_back)
    frame = pl.DataFrame({"age": list(range(5000)), "site": ["a", "b"] * 2500})
    store = SiteStore(tmp_path)
    store.write("clean", frame.lazy() if lazy else frame, {"operation": "test"}, rows=5000)
    (file,) = store.table_path("clean").glob("*.parquet")
    manifest = integrity.read_manifest(store.table_path("clean"))
    assert manifest == {file.name: hashlib.sha256(file.read_bytes()).hexdigest()}
