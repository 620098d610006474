"""A library with many hidden or system folders: the --json list is capped, the text row counts them all."""
from __future__ import annotations

from pathlib import Path

from indexer.runner import IndexSummary
from indexer.scan import SKIPPED_FOLDERS, describe_skipped, scan


def test_skipped_folders_capped_in_json_but_counted_in_text(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    for i in range(150):
        (lib / f"pack{i:03d}" / "__MACOSX").mkdir(parents=True)
    scanned = scan([str(lib)])
    assert scanned.skipped[SKIPPED_FOLDERS] == 150
    summary = IndexSummary(index=str(tmp_path / "idx"), skipped=dict(scanned.skipped), skipped_folders=list(scanned.skipped_folders))
    d = summary.to_dict()
    assert d["skipped_folders"] == sorted(scanned.skipped_folders)[:100]
    assert len(d["skipped_folders"]) == 100 and d["skipped_folders_more"] == 50
    row = describe_skipped(d["skipped"], d["skipped_folders"])
    assert row.startswith("150 hidden or system folders (") and row.endswith(" and 147 more)")
