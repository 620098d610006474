"""Session 39 dogfood (a sound designer's afternoon on the corpus): defects found there, each
test failing before its fix.

`search --export` copied a whole-file match byte for byte without looking at it: a file
overwritten since it was indexed (a download that saved an HTML error page under the sound's
name) was "exported" as ``01_dog.flac`` holding the page, counted among the results written and
given a row in soundsift-export.csv, while an excerpt of the same file was reported as not
exported. README: "A result that cannot be read is reported with its reason and the others are
still written."
"""
from __future__ import annotations

import csv
from pathlib import Path

from conftest import tone, write
from engine.export import MANIFEST, export_hits
from engine.query import Hit

SR = 48_000


def _hit(path: Path, duration: float, rank: int) -> Hit:
    return Hit(path=str(path), start=0.0, end=duration, score=1.0 - rank / 10, file_id=rank,
               segment_id=rank, duration=duration, format=path.suffix[1:].upper(), sample_rate=SR,
               folder=str(path.parent))


def test_a_whole_file_overwritten_by_no_audio_is_not_exported(tmp_path):
    lib = tmp_path / "lib"
    dog = write(lib / "dog.flac", tone(440, 1.0, SR), SR)
    kept = write(lib / "rain.flac", tone(220, 1.5, SR), SR)
    dog.write_text("<html><body>404 Not Found</body></html>\n")     # replaced since it was indexed
    result = export_hits([_hit(dog, 1.0, 1), _hit(kept, 1.5, 2)], tmp_path / "picks", query="dog")
    assert [w.path.name for w in result.written] == ["02_rain.flac"]
    assert len(result.failed) == 1
    path, reason = result.failed[0]
    assert path == str(dog) and reason.startswith("not readable as audio")
    assert not (tmp_path / "picks" / "01_dog.flac").exists()
    with open(tmp_path / "picks" / MANIFEST, newline="", encoding="utf-8") as f:
        assert [row["exported"] for row in csv.DictReader(f)] == ["02_rain.flac"]
    assert (tmp_path / "picks" / "02_rain.flac").read_bytes() == kept.read_bytes()
