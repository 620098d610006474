"""The evaluator's tables (ESC-50, Clotho, generic CSVs) read as training manifests are read
(session 39): UTF-8 with or without a byte-order mark, or UTF-16 as Excel saves "Unicode Text"
(tab-separated) and Windows tools write it; any other encoding is one message naming the file."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InvalidDataset
from tests.conftest import tone, write
from trainer.evaluation.datasets import load_classification, load_retrieval

SR = 8000
ESC50 = [("filename", "fold", "target", "category", "esc10", "src_file", "take"),
         ("1-100-A-0.wav", "1", "0", "dog", "True", "100", "A"),
         ("1-200-A-10.wav", "1", "10", "rain", "True", "200", "A"),
         ("2-300-A-0.wav", "2", "0", "dog", "True", "300", "A")]
CLOTHO = [("file_name", "caption_1", "caption_2", "caption_3", "caption_4", "caption_5"),
          ("café.wav", "un café bruyant", "tasses qui s’entrechoquent", "murmures", "cuillère", "pluie"),
          ("rue.wav", "voitures", "klaxon", "pas sur le trottoir", "vent", "bus à l’arrêt")]


def table(path: Path, rows: list[tuple[str, ...]], encoding: str, sep: str = ",") -> Path:
    """``rows`` written as a table in ``encoding`` (Python's "utf-16" writes a byte-order mark)."""
    path.write_bytes("\r\n".join(sep.join(r) for r in rows).encode(encoding) + "\r\n".encode(encoding))
    return path


def audio_for(folder: Path, rows: list[tuple[str, ...]]) -> Path:
    for row in rows[1:]:
        write(folder / row[0], tone(440, 0.1, SR), SR)
    return folder


@pytest.mark.parametrize("encoding, sep", [("utf-16", "\t"), ("utf-16", ","), ("utf-16-le", "\t"),
                                           ("utf-8-sig", ",")])
def test_an_esc50_csv_saved_by_excel_as_unicode_text_reads(tmp_path, encoding, sep):
    audio = audio_for(tmp_path / "audio", ESC50)
    ds = load_classification(table(tmp_path / "esc50.csv", ESC50, encoding, sep), audio)
    assert ds.format == "esc50" and ds.labels == ["dog", "rain"]
    assert ds.targets == [0, 1, 0] and ds.folds == ["1", "1", "2"]
    assert ds.audio_paths == [audio / row[0] for row in ESC50[1:]]


def test_clotho_captions_in_utf16_read_with_their_accents(tmp_path):
    audio = audio_for(tmp_path / "audio", CLOTHO)
    ds = load_retrieval(table(tmp_path / "clotho_captions_evaluation.csv", CLOTHO, "utf-16", "\t"), audio)
    assert ds.format == "clotho" and ds.audio_paths == [audio / "café.wav", audio / "rue.wav"]
    assert ds.captions[:2] == ["un café bruyant", "tasses qui s’entrechoquent"] and len(ds.captions) == 10
    assert ds.caption_audio == [0] * 5 + [1] * 5


def test_a_generic_table_in_utf16_big_endian_reads(tmp_path):
    rows = [("audio", "label"), ("a.wav", "chien"), ("b.wav", "pluie fine")]
    audio = audio_for(tmp_path, rows)
    ds = load_classification(table(tmp_path / "labels.csv", rows, "utf-16-be", "\t"), audio)
    assert ds.format == "generic" and ds.labels == ["chien", "pluie fine"] and ds.targets == [0, 1]


@pytest.mark.parametrize("load, rows", [(load_classification, ESC50), (load_retrieval, CLOTHO)])
def test_a_latin1_table_is_one_message_naming_the_file(tmp_path, load, rows):
    rows = [tuple(cell.replace("’", "'") for cell in row) for row in rows]
    rows[1] = (rows[1][0],) + tuple(c + " é" for c in rows[1][1:])     # é: a byte UTF-8 never has alone
    audio = audio_for(tmp_path / "audio", rows)
    path = table(tmp_path / "table.csv", rows, "latin-1")
    with pytest.raises(InvalidDataset) as e:
        load(path, audio)
    said = str(e.value)
    assert said.startswith(f"{path}: not UTF-8 text (") and said.endswith("save the CSV as UTF-8")


def test_an_unreadable_utf16_table_is_one_message_too(tmp_path):
    """Bytes that are no UTF-16 after its byte-order mark (an odd length: a cut file)."""
    path = tmp_path / "esc50.csv"
    path.write_bytes(table(path, ESC50, "utf-16", "\t").read_bytes() + b"\x00")
    with pytest.raises(InvalidDataset, match=r"esc50\.csv: not UTF-16 text \(.*\); save the CSV as UTF-8"):
        load_classification(path, tmp_path)
