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
