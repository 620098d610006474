"""Leftovers a dogfooding sound designer found (session 42, h223).

1. `tag FILE --index IDX` tags an indexed file no longer on disk from its stored vectors (as
   `similar` finds sounds like it), saying it is not on disk, instead of "no such file or folder".
2. `index`'s note on spreadsheets not imported names each by its path in the library (two
   folders' metadata.csv told apart) and a lone one in a ready-to-run `sheet import`.
3. A sheet import's cell "-" of a field the file shows nothing under is reported as nothing to
   clear, not as "already what the files show (their own metadata)".
4. A rebuild's note on moved files counts tags and captions each under its own name: one moved
   file with one user tag and no caption "kept 1 tag", not "1 tag and caption".
5. `search --export` copying a file cut short when indexed says so on stderr, naming it.
6. A rebuild's header check says libmpg123's "Warning: Xing stream size off …" under the MP3's
   name, not as a bare line on stderr (it probed MP3s on 8 threads, where fd 2 cannot be captured).
"""
from __future__ import annotations

import json
import logging
import os
import shlex

from sqlalchemy import select

from engine.catalog import File, Tag
from indexer import build_index
from indexer.metadata_sheet import import_sheet
from tests.conftest import catalog_session, tone, write
from tests.test_sheet_roundtrip40 import index, run, titled
from ui.cli import app
from tests import test_index_audit34
from tests.test_index_rebuild import model_a as old_model, model_b as new_model

SR = 16000
fake_model_cli = test_index_audit34.fake_model_cli      # `soundsift index` with the FakeModel (a fixture)


def test_a_rebuild_counts_the_moved_files_tags_apart_from_their_captions(tmp_path, caplog):
    lib = (tmp_path / "lib").resolve()
    write(lib / "beep.wav", tone(440, 1.0, SR), SR)
    idx = tmp_path / "idx"
    build_index([lib], idx, old_model(), workers=0, progress=False)
    with catalog_session(idx, write=True) as s:
        fid = s.scalar(select(File.id))
        s.add(Tag(file_id=fid, label="beep", score=1.0, source="user"))        # a tag, no caption
    (lib / "sorted").mkdir()
    os.rename(lib / "beep.wav", lib / "sorted" / "beep.wav")

    with caplog.at_level(logging.INFO, logger="indexer"):
        build_index([lib], idx, new_model(), workers=0, progress=False, rebuild=True)

    assert "1 file moved or renamed since the index was last run kept 1 tag at its new path" in caplog.text
    assert "caption" not in " ".join(r.getMessage() for r in caplog.records if "moved or renamed" in r.getMessage())


def test_a_dash_where_the_file_shows_nothing_is_reported_as_nothing_to_clear(tmp_path):
    lib = (tmp_path / "Library").resolve()
    titled(lib / "door.wav", "Door creak", None)                   # a title of its own, no comment
    idx = tmp_path / "idx"
    index(lib, idx)
    sheet = tmp_path / "notes.csv"
    sheet.write_text("Filename,Title,Comment\ndoor.wav,Door creak,-\n")

    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx)])

    assert done.exit_code == 0, done.output
    said = " ".join(done.stdout.split())
    assert ('unchanged: 1 cell left out, already what the files show (their own metadata); 1 cell "-" left '
            "out, nothing to clear (the file shows nothing there); 1 matched file changed nothing") in said


def test_the_note_on_sheets_not_imported_names_the_folder_and_the_command(tmp_path, fake_model_cli):
    lib, idx = tmp_path / "lib", str(tmp_path / "idx")
    for folder in ("a", "b"):
        write(lib / folder / "dog.wav", tone(440 if folder == "a" else 660, 1.0, SR), SR)
        (lib / folder / "metadata.csv").write_text("Filename,Description\ndog.wav,A dog\n")
    first = run(app, ["index", str(lib), "--index", idx, "--workers", "0", "--no-progress", "--json"])
    assert first.exit_code == 0, first.output
    import_sheet(idx, lib / "a" / "metadata.csv")

    again = run(app, ["index", str(lib), "--index", idx, "--workers", "0", "--no-progress", "--json"])

    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["sheets_not_imported"] == [str(lib / "b" / "metadata.csv")]
    said = " ".join(again.stderr.split())
    assert "not imported as library sheets: " + os.path.join("b", "metadata.csv") + ";" in said
    command = said.split("`soundsift sheet import ", 1)[1].split("`", 1)[0]
    assert shlex.split(command) == [str(lib / "b" / "metadata.csv"), "--index", idx]


def test_tag_with_an_index_tags_an_indexed_file_no_longer_on_disk(tmp_path, tiny_clap_dir):
    lib = (tmp_path / "lib").resolve()
    write(lib / "beep.wav", tone(440, 1.0, SR), SR)
    idx = tmp_path / "idx"
    build_index([lib], index=idx, model=str(tiny_clap_dir), workers=0, progress=False)
    asked = ["tag", str(lib / "beep.wav"), "--index", str(idx), "--labels", "dog,rain,bell", "--json"]
    before = json.loads(run(app, asked).stdout)["files"][0]
    os.remove(lib / "beep.wav")

    done = run(app, asked)

    assert done.exit_code == 0, done.output
    after = json.loads(done.stdout)["files"][0]
    assert (after["path"], after["from_index"], after.get("missing")) == (str(lib / "beep.wav"), True, True)
    assert [t["label"] for t in after["tags"]] == [t["label"] for t in before["tags"]]
    assert "beep.wav: not on disk: tagged from the vectors the index stored of it" in " ".join(done.stderr.split())
    table = run(app, asked[:-1], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "beep.wav (not on disk) — " in table.stdout


def test_an_export_copying_a_file_cut_short_says_so(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from engine.query import SoundIndex
    from tests.index_fakes import FakeModel
    from ui.cli import results
    lib = (tmp_path / "lib").resolve()
    cut = write(lib / "cut.wav", tone(440, 4.0, SR), SR)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 3])       # its header still says 4 s
    write(lib / "whole.wav", tone(880, 2.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        hits = index.search_vectors(index.file_vectors().vectors[0], k=5)
    buf = io.StringIO()
    monkeypatch.setattr(results, "err_console", Console(file=buf, width=300))

    results.export_results(hits, tmp_path / "out", whole_files=True, pad=0.0, query="tone")

    said = " ".join(buf.getvalue().split())
    assert "exported 2 of 2 results" in said
    assert ("note: copied as it is, cut short (the audio ends before the header says: an interrupted copy or "
            "download): " + results.display_path(str(cut))) in said
    assert "whole.wav" not in said.split("note: copied as")[1]


def test_the_rebuild_header_check_says_a_cut_mp3s_warning_under_its_name(tmp_path, capfd, caplog):
    from indexer.rebuild import _unreadable_headers
    from tests.test_decoder_messages34 import XING, cut_mp3
    mp3 = cut_mp3(tmp_path / "steps.mp3")
    wavs = [write(tmp_path / f"t{i}.wav", tone(440 + 110 * i, 0.5, SR), SR) for i in range(3)]

    with caplog.at_level(logging.WARNING, logger="engine.audio"):
        failed = _unreadable_headers([str(wavs[0]), str(mp3), str(wavs[1]), str(wavs[2])])

    assert failed == {}
    assert XING not in capfd.readouterr().err                        # no bare line on the terminal
    assert any(r.getMessage().startswith(f"{mp3}: ") and XING in r.getMessage() for r in caplog.records)
