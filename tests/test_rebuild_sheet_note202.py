"""A rebuild carries the library sheets imported into the index over (indexer.rebuild.carry_over),
so its summary does not point at a sheet among the files as "not imported" (session 41: `soundsift
index … --rebuild` printed "note: spreadsheets among the files, not imported as library sheets:
…" for a sheet imported long before, found against the fresh catalog before the carry-over)."""
from __future__ import annotations

from indexer import build_index
from indexer.metadata_sheet import import_sheet, sheet_counts
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel

SHEET = "Filename,Description\nrain.wav,Rain on a tin roof\n"


def _index(lib, idx, **kw):
    return build_index([lib], idx, FakeModel(), workers=0, progress=False, **kw)


def test_a_rebuild_does_not_call_an_imported_sheet_not_imported(tmp_path):
    lib = (tmp_path / "lib").resolve()
    write(lib / "rain.wav", noise(2.0, 16000, seed=3), 16000)
    write(lib / "beep.wav", tone(880, 1.0, 16000), 16000)
    (lib / "metadata.csv").write_text(SHEET)
    (lib / "notes.csv").write_text("Filename,Description\nnowhere.wav,Not in this library\n")
    idx = tmp_path / "idx"
    assert _index(lib, idx).sheets_not_imported == [str(lib / "metadata.csv"), str(lib / "notes.csv")]
    import_sheet(idx, lib / "metadata.csv")
    assert _index(lib, idx).sheets_not_imported == [str(lib / "notes.csv")]
    rebuilt = _index(lib, idx, rebuild=True)
    assert rebuilt.rebuild
    assert sheet_counts(idx) == {"metadata.csv": 1}                                 # carried over
    assert rebuilt.sheets_not_imported == [str(lib / "notes.csv")]                  # and said so
    assert _index(lib, idx).sheets_not_imported == [str(lib / "notes.csv")]
