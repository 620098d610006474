"""Keyword search relevance (engine.keywords): words every file holds, such as the folders above
a library, say nothing about any one file; names as file systems and other scripts write them
(decomposed accents, CJK); file names that could deceive the results table."""
from __future__ import annotations

import io
import logging
import os
import unicodedata

import numpy as np
import pytest

from engine.keywords import KeywordIndex
from engine.query import Hit, SoundIndex
from query_fixtures import FakeModel, FileSpec, write_index


pytestmark = pytest.mark.usefixtures("private_cache")

DIM = 16
NAMES = ["Doors/Door_Wood_Slam_01", "Doors/Door_Metal_Creak", "Footsteps/Gravel_Run_02",
         "Footsteps/Wood_Walk", "Rain/Rain_Roof_Heavy", "Rain/Rain_Window", "Wind/Wind_Howl_Long_Take",
         "Wind/Gust", "Ambience/Market_Crowd_Busy_Morning", "Ambience/Park"]


def _docs(paths: list[str]) -> list[tuple[int, str]]:
    """``(file_id, text)`` as the query layer gives a KeywordIndex: a path without extension."""
    return [(i, os.path.splitext(p)[0]) for i, p in enumerate(paths, start=1)]


def _library(root: str = "/Volumes/Foley/") -> list[str]:
    return [f"{root}{name}.wav" for name in NAMES]


def test_a_word_every_file_holds_makes_no_file_a_match():
    """"foley" names the volume every file lies on: it matched every file with a BM25 near 0,
    so the keyword side ranked all files (by name length) and the fusion boosted them."""
    index = KeywordIndex.build(_docs(_library()))
    assert index.scores("foley")[0].tolist() == []
    assert index.scores("volumes foley")[0].tolist() == []
    ids, scores = index.scores("foley door")
    door_ids, door_scores = index.scores("door")
    assert ids.tolist() == door_ids.tolist() == [1, 2]          # only the door files match
    np.testing.assert_array_equal(scores, door_scores)          # their scores as before


def test_a_word_nearly_every_file_holds_says_nothing_either():
    """Two hundred files on the Foley volume and one from the downloads folder: "foley" still
    tells none of them apart; a word of a few files keeps its BM25 unchanged."""
    paths = [f"/Volumes/Foley/Misc/take_{i:03d}_{'door' if i < 5 else 'hum'}.wav" for i in range(200)]
    paths.append("/Users/ana/Downloads/door_knock.wav")
    index = KeywordIndex.build(_docs(paths))
    assert index.scores("foley")[0].tolist() == []
    ids, scores = index.scores("foley door")
    assert sorted(ids.tolist()) == [1, 2, 3, 4, 5, 201]
    np.testing.assert_array_equal(scores, index.scores("door")[1])
    assert index.scores("hum")[0].size == 195                   # 97 %: still a word that tells


def test_a_word_every_allowed_file_holds_says_nothing_within_the_filter():
    """With a filter keeping the Doors folder, "doors" is in every file the search may return:
    it tells them apart no more than "foley" does."""
    index = KeywordIndex.build(_docs(_library()))
    doors = np.array([1, 2])
    assert index.scores("doors", allowed=doors)[0].tolist() == []
    assert index.scores("doors slam", allowed=doors)[0].tolist() == [1]
    assert index.scores("doors")[0].tolist() == [1, 2]          # unfiltered it does tell
    assert index.scores("doors creak", allowed=np.array([2]))[0].tolist() == [2]   # one file: its words
    single = KeywordIndex.build(_docs(["/Volumes/Foley/Zip_Pass.aiff"]))
    assert single.scores("zip")[0].tolist() == [1]


@pytest.fixture
def foley_index(tmp_path):
    """The ten files of ``NAMES`` on a Foley volume, their vectors spread over the bands."""
    model = FakeModel(DIM)
    files = [FileSpec(p, model.band_vector(i + 2)) for i, p in enumerate(_library())]
    write_index(tmp_path / "idx", files, dim=DIM)
    with SoundIndex.open(tmp_path / "idx", model=model) as index:
        yield index


def test_the_volume_name_in_a_query_does_not_reorder_the_results(foley_index):
    """"foley door" with --keywords: the door files rank up; the others keep the sound's order
    and keywords 0 (every hit had keywords > 0, and the others came in name-length order)."""
    plain = [h.path for h in foley_index.search_text("foley door", k=10)]
    fused = foley_index.search_text("foley door", k=10, keywords=True)
    doors = {p for p in plain if "/Doors/" in p}
    assert {h.path for h in fused if h.keywords > 0} == doors
    assert [h.path for h in fused if h.path not in doors] == [p for p in plain if p not in doors]
    only_volume = foley_index.search_text("foley", k=10, keywords=True)
    assert [h.path for h in only_volume] == [h.path for h in foley_index.search_text("foley", k=10)]
    assert all(h.keywords == 0.0 for h in only_volume)


def test_names_with_decomposed_accents_are_found_by_their_words():
    """macOS writes "ü" in a file name as "u" and a combining diaeresis (NFD): the name split
    there into "tu" and "re", so "Türe" (typed composed) never found ``Türe_Knall.wav``."""
    nfd = unicodedata.normalize("NFD", "/Bibliothek/Türe_Knall_Holz")
    index = KeywordIndex.build([(1, nfd), (2, "/Bibliothek/Fenster_Regen"), (3, "/Bibliothek/Tor")])
    assert index.scores("Türe")[0].tolist() == [1]
    assert index.scores(unicodedata.normalize("NFD", "türe knall"))[0].tolist() == [1]
    assert index.scores("tu")[0].tolist() == []


def test_words_match_in_any_case_and_camel_case_splits_accented_names():
    """"STRASSE" is "Straße" in capitals; ``CaféBar`` and ``ÄrgerÖffnen`` are two words each."""
    index = KeywordIndex.build([(1, "/lib/Straße_Verkehr"), (2, "/lib/CaféBar_Morning"),
                                (3, "/lib/TürÖffnen_Knarren"), (4, "/lib/Rain")])
    assert index.scores("STRASSE")[0].tolist() == [1]
    assert index.scores("strasse")[0].tolist() == [1]
    assert index.scores("bar")[0].tolist() == [2]
    assert index.scores("öffnen")[0].tolist() == [3]


def test_chinese_and_japanese_names_are_found_by_the_words_inside_them():
    """Chinese and Japanese write words without spaces: ``木のドア`` (wooden door) was one word,
    so "ドア" (door) never found it, nor "雷" (thunder) ``雷雨``; the whole name still ranks first."""
    index = KeywordIndex.build([(1, "/lib/木のドア_01"), (2, "/lib/雷雨_夜"), (3, "/lib/雨"),
                                (4, "/lib/鉄のドア"), (5, "/lib/DoorSlam")])
    assert sorted(index.scores("ドア")[0].tolist()) == [1, 4]
    assert index.scores("雷")[0].tolist() == [2]
    assert index.scores("雷雨")[0].tolist() == [2, 3]          # the storm first, then rain alone
    assert index.scores("木のドア")[0].tolist()[0] == 1
    assert index.scores("ア")[0].tolist() == []                 # a kana alone is not a word
    assert index.containing_all("ドア").tolist() == [1, 4]


def test_full_and_half_width_names_are_found_by_their_words():
    """Japanese systems often write Latin letters full-width (``ＤＯＯＲ``) and katakana
    half-width (``ﾄﾞｱ``): neither was found by the word typed as usual."""
    index = KeywordIndex.build([(1, "/lib/ＤＯＯＲ＿ＳＬＡＭ"), (2, "/lib/ﾄﾞｱ_開く"), (3, "/lib/rain")])
    assert index.scores("door")[0].tolist() == [1]
    assert index.scores("ドア")[0].tolist() == [2]


@pytest.mark.parametrize("plural, singular", [("leaves", "leaf"), ("hooves", "hoof"), ("feet", "foot"),
                                              ("knives", "knife"), ("buses", "bus"), ("mice", "mouse")])
def test_irregular_plurals_find_their_singular(plural, singular):
    """The stemmer brought "footsteps" to "footstep" but not "leaves" to "leaf" (leav ≠ leaf):
    "leaves rustling" missed ``Leaf_Rustle.wav``, "horse hoof" ``Horse_Hooves_Gravel.wav``."""
    index = KeywordIndex.build([(1, f"/lib/{singular.title()}_Rustle"), (2, f"/lib/Many_{plural.title()}"),
                                (3, "/lib/rain"), (4, "/lib/wind")])
    assert sorted(index.scores(plural)[0].tolist()) == [1, 2]
    assert sorted(index.scores(singular)[0].tolist()) == [1, 2]


BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
        "\u200e", "\u200f", "\u061c"]


def test_bidirectional_controls_in_names_show_as_escapes_in_the_table(monkeypatch):
    """A right-to-left override made ``invoice\u202evaw.exe`` read "invoiceexe.wav" in the
    results table; every bidirectional control now shows as its escape. JSON keeps the name."""
    from tests.test_search_audit import table_texts
    from ui.cli import results

    path = "/lib/" + "".join(BIDI) + "/invoice\u202evaw.exe"
    hit = Hit(path, 0.0, 1.0, 0.5, 1, 1, 1.0, "WAV", 48000, about="Door\u2067 slam\u2028two")
    for text in table_texts(monkeypatch, hit, "search 'x\u202e'"):
        assert not set(text) & set(BIDI + ["\u2028"])
        assert r"invoice\u202evaw.exe" in text
    assert r"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c" in text
    assert r"Door\u2067 slam\u2028two" in text and r"search 'x\u202e'" in text
    printed = []
    monkeypatch.setattr(results, "print_json", printed.append)
    results.show_hits([hit], True, "search 'x'")
    assert printed[0][0]["path"] == path


def test_bidirectional_controls_in_log_lines_show_as_escapes():
    """The log lines escaped C0/C1 controls, not a right-to-left override."""
    from ui.cli.common import TerminalSafeFormatter

    record = logging.LogRecord("soundsift", logging.WARNING, __file__, 1, "cannot read %s",
                               ("/lib/invoice\u202evaw.exe\u2066",), None)
    line = TerminalSafeFormatter("%(message)s").format(record)
    assert line == r"cannot read /lib/invoice\u202evaw.exe\u2066"


def test_a_file_that_could_not_be_exported_is_named_with_its_controls_escaped(monkeypatch, tmp_path):
    """``--export``'s "not exported:" line printed the file's name as it is: an escape sequence
    in it reached the terminal, a right-to-left override reversed it."""
    from rich.console import Console

    from engine import export
    from engine.export import ExportResult
    from ui.cli import results

    bad = "/lib/a\x1b[2Jb/invoice\u202evaw.exe"
    monkeypatch.setattr(export, "export_hits", lambda *a, **k: ExportResult(failed=[(bad, "cannot read")]))
    buf = io.StringIO()
    monkeypatch.setattr(results, "err_console", Console(file=buf, width=200, markup=False))
    results.export_results([], tmp_path / "out", False, 0.0, "x")
    text = buf.getvalue()
    assert "\x1b" not in text and "\u202e" not in text
    assert r"not exported: /lib/a\x1b[2Jb/invoice\u202evaw.exe: cannot read" in text


def test_numbers_that_name_things_are_words_and_take_numbers_are_not():
    """"808 kick" found nothing by its number (every number was dropped): a number of three or four
    digits names a thing (a drum machine, a frequency, a year), standing alone or inside a word
    (``Sine_440Hz``); take and file numbers ("01", "00127", "38211") match nothing."""
    index = KeywordIndex.build([(1, "/lib/Drums/TR-808_Kick_01.wav"), (2, "/lib/Drums/Kick_Acoustic_01.wav"),
                                (3, "/lib/Tones/Sine_440Hz.wav"), (4, "/lib/Tones/Sine 1000 Hz.wav"),
                                (5, "/lib/Rain/Rain_01.wav")])
    ids, scores = index.scores("808 kick")
    assert ids.tolist() == [1, 2] and scores[0] > scores[1]
    assert index.scores("440")[0].tolist() == [3]
    assert index.scores("1000 hz")[0].tolist()[0] == 4
    assert index.scores("01")[0].tolist() == []
    numbered = KeywordIndex.build([(1, "Door_Slam_00127.wav"), (2, "Door_Slam_38211.wav"), (3, "Door_0808.wav")])
    assert [numbered.scores(q)[0].tolist() for q in ("00127", "38211", "0808")] == [[], [], []]
