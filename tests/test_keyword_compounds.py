"""Keyword search on words written without separators (engine.keywords.split_compound):
sound libraries name files ``DOORSLAM_Wood_Heavy_01``, ``GUNSHOT``, ``thunderclap``; "door slam"
did not find them, nor "doorslam" ``Door_Slam_02``. A compound splits only into words the
library spells out elsewhere (four letters or more) or common sound words, and junk splits
("the" + "rapist", "bar" + "king", "off" + "ice") are none."""
from __future__ import annotations

import os

import numpy as np
import pytest

from engine.keywords import COMPOUND_PART_WEIGHT, KeywordIndex, split_compound, sound_words
from engine.query import SoundIndex
from query_fixtures import FakeModel, FileSpec, write_index


pytestmark = pytest.mark.usefixtures("private_cache")

#: names as sound libraries write them, and what a user types for each
COMPOUNDS = [("DOORSLAM_Wood_Heavy_01", "door slam"), ("GUNSHOT_Pistol_02", "gun shot"),
             ("CARPASSBY_Fast", "car passby"), ("WHOOSHBIG_03", "whoosh big"),
             ("thunderclap_distant", "thunder clap"), ("doorbell_ring", "door bell"),
             ("KICKDRUM_808", "kick drum")]
FILLER = ["Rain_Roof_Heavy", "Wind_Howl_Long", "Market_Crowd_Busy", "Water_Splash_Small",
          "Bird_Song_Morning", "Metal_Creak_Low"]


def _index(names: list[str]) -> KeywordIndex:
    """A KeywordIndex of ``names`` under one library folder, file ids from 1 in order."""
    return KeywordIndex.build([(i, f"/Volumes/SFX/{os.path.splitext(n)[0]}") for i, n in enumerate(names, 1)])


@pytest.mark.parametrize("name, typed", COMPOUNDS)
def test_a_compound_name_is_found_by_its_words(name, typed):
    """Only the compound's file holds the words: "door slam", "door" and "slam" each find it."""
    index = _index([name, *FILLER])
    assert index.scores(typed)[0].tolist() == [1]
    for word in typed.split():
        assert index.scores(word)[0].tolist() == [1], word
    assert index.containing_all(typed).tolist() == [1]


@pytest.mark.parametrize("name, typed", COMPOUNDS)
def test_the_words_written_together_find_the_name_that_spells_them_out(name, typed):
    """The other way round: "doorslam" finds ``Door_Slam_Wood_Heavy_01``, the file holding
    both words first; a file holding one of them is no match (a compound's parts count
    together), and neither is any other file."""
    first, second = typed.split()
    separate = [f"{first.title()}_{second.title()}_Take", f"{first.title()}_Only_Take", *FILLER]
    index = _index(separate)
    compound = first + second
    assert index.scores(compound)[0].tolist() == [1]
    assert index.scores(compound.upper())[0].tolist() == [1]
    assert index.containing_all(compound).tolist() == [1]


def test_words_joined_in_the_query_find_a_compound_of_no_known_words():
    """"car pass by" is "carpassby" written apart: found though "by" is no part of anything
    (too short, a stop word); "lorem ipsum" finds ``LOREMIPSUM`` though no library or sound
    word holds "lorem" or "ipsum"."""
    index = _index(["CARPASSBY_Fast", "LOREMIPSUM_Take", *FILLER])
    assert index.scores("car pass by")[0].tolist()[0] == 1
    assert index.scores("lorem ipsum")[0].tolist() == [2]
    assert index.scores("lorem")[0].tolist() == []               # no split without known words
    assert index.containing_all("lorem ipsum").tolist() == [2]


def test_a_compound_splits_into_the_fewest_known_words_of_three_letters_or_more():
    known = frozenset({"door", "doors", "slam", "lam", "heavy", "doorslam", "kick", "gun", "shot"})
    assert split_compound("doorslam", known) == ("door", "slam")      # not doors + lam
    assert split_compound("doorslamheavy", known) == ("doorslam", "heavy")
    assert split_compound("gunshots", known) == ("gun", "shots")      # a plural ending the word
    assert split_compound("kickdrum", known) == ()                    # "drum" unknown: no split
    assert split_compound("kickdrum", known | {"drum"}) == ("kick", "drum")
    assert split_compound("doorx", known) == ()                       # too short to hold two parts
    assert split_compound("slamdoor2", known) == ()                   # letters only
    assert split_compound("doorslam", frozenset({"doorslam"})) == ()  # no word is its own part


def test_a_compound_of_compounds_counts_as_every_word_inside():
    """``DOORSLAMHEAVY`` in a library that also writes ``DOORSLAM``: "door" still finds it."""
    index = _index(["DOORSLAMHEAVY_01", "DOORSLAM_02", *FILLER])
    assert sorted(index.scores("door")[0].tolist()) == [1, 2]
    assert sorted(index.scores("doorslam")[0].tolist()) == [1, 2]
    assert index.scores("heavy door")[0].tolist()[0] == 1


def test_library_words_split_a_compound_only_when_both_are_there():
    """Neither "marble" nor "table" is a common sound word: ``MARBLETABLE`` is "marble" +
    "table" in a library that writes both apart, one word otherwise."""
    assert not {"marble", "table"} & sound_words()
    alone = _index(["MARBLETABLE_Hit", "Marble_Roll", *FILLER])
    assert alone.scores("table")[0].tolist() == [] and alone.scores("marble")[0].tolist() == [2]
    both = _index(["MARBLETABLE_Hit", "Marble_Roll", "Table_Knock", *FILLER])
    assert sorted(both.scores("table")[0].tolist()) == [1, 3]
    assert both.scores("marble table")[0].tolist()[0] == 1


def test_scarecrow_is_a_scare_and_a_crow_only_to_a_library_that_writes_scare():
    """"crow" is a sound word (AudioSet's "Crow"), "scare" none: in a library without it,
    "crow" finds the bird alone; where a file says "scare", "scarecrow" splits (the library's
    words decide) and the bird, whose name spells the word out, still ranks first."""
    plain = _index(["Scarecrow_Creak", "Crow_Caw_Distant", *FILLER])
    assert plain.scores("crow")[0].tolist() == [2]
    scary = _index(["Scarecrow_Creak", "Crow_Caw_Distant", "Jump_Scare_Hit", *FILLER])
    assert scary.scores("crow")[0].tolist() == [2, 1]


@pytest.mark.parametrize("junk, names, query", [
    ("therapist", ["The_Rapist_Trailer"], "rapist"),      # "the": a stop word is no part
    ("office", ["Switch_Off", "Ice_Crack"], "ice"),        # "off": begins too many words
    ("barking", ["Bar_Crowd", "King_Speech"], "bar"),      # an inflection of "bark" splits as "bark"
    ("dripping", ["Drip_Single", "Sonar_Ping"], "ping"),   # "drip" + "ping": the verb's doubled p
    ("hottest", ["Hot_Oil_Sizzle", "Test_Tone"], "test"),  # "hot": three letters, no sound word
])
def test_words_that_look_like_two_are_not_split(junk, names, query):
    """A word that only looks like two library words written together stays one: its file is
    not found by either, nor does the word typed find the file of either."""
    index = _index([f"{junk.title()}_Room_Tone", *names, *FILLER])
    assert 1 not in index.scores(query)[0].tolist()
    other = 2 + next(i for i, n in enumerate(names) if query.title() in n)
    assert other in index.scores(query)[0].tolist() and other not in index.scores(junk)[0].tolist()


def test_a_word_spelled_out_ranks_above_the_same_word_inside_a_compound():
    """A split is a guess: "door" ranks ``Door_Creak`` above ``DOORSLAM`` (each part counts
    COMPOUND_PART_WEIGHT of the compound), and "doorslam" the compound above ``Door_Slam``."""
    assert 0 < COMPOUND_PART_WEIGHT < 1
    index = _index(["DOORSLAM_Take", "Door_Creak_Take", "Door_Slam_Take", *FILLER])
    assert index.scores("door")[0].tolist() == [2, 3, 1]
    assert index.scores("doorslam")[0].tolist() == [1, 3]


def test_a_query_compound_finds_no_file_that_holds_one_of_its_words_alone():
    """"rainbow" is "rain" + "bow" (both sound words): files of rain alone or a bow alone are
    no match, or every compound typed would bring in both words' files."""
    index = _index(["Rainbow_Chime", "Rain_Roof_Heavy_2", "Bow_Violin", "Rain_Bow_Whip", *FILLER[1:]])
    assert index.scores("rainbow")[0].tolist() == [1, 4]


def test_the_parts_of_a_compound_add_to_the_files_length_as_bm25_counts_them():
    """``DOORSLAM`` holds doorslam once and door and slam at COMPOUND_PART_WEIGHT each."""
    index = _index(["DOORSLAM", "Rain_Roof"])
    row = int(np.flatnonzero(index.file_ids == 1)[0])
    for word, count in (("doorslam", 1.0), ("door", COMPOUND_PART_WEIGHT), ("slam", COMPOUND_PART_WEIGHT)):
        rows, tf = index.postings[word]
        assert tf[rows.tolist().index(row)] == count
    assert index.lengths[row] == 2 + 2 * COMPOUND_PART_WEIGHT      # and "volumes" ("sfx": a stop word)


DIM = 16


def test_a_keyword_search_finds_a_compound_name_and_leaves_out_excluded_compounds(tmp_path):
    """Through SoundIndex.search_text: "gun shot" brings ``GUNSHOT_01`` (far from the query's
    sound) to the top; excluding "gunshot" leaves it and ``Gun_Shot_Rifle`` out of the keyword
    side."""
    model = FakeModel(DIM)
    files = [FileSpec(f"/lib/tones/t{i}.wav", model.band_vector(3 + (i % 2))) for i in range(6)]
    files += [FileSpec("/lib/weapons/GUNSHOT_01.wav", model.band_vector(12)),
              FileSpec("/lib/weapons/Gun_Shot_Rifle.wav", model.band_vector(14))]
    write_index(tmp_path / "idx", files, dim=DIM)
    with SoundIndex.open(tmp_path / "idx", model=model) as index:
        hits = index.search_text("gun shot", k=3, keywords=True)
        assert {h.path for h in hits[:2]} == {"/lib/weapons/GUNSHOT_01.wav", "/lib/weapons/Gun_Shot_Rifle.wav"}
        assert all(h.keywords > 0 for h in hits[:2])
        assert any(h.keywords > 0 for h in index.search_text("gun", k=8, keywords=True))
        kept = index.search_text("gun", k=8, keywords=True, exclude=["gunshot"], exclude_weight=0.0)
        assert all(h.keywords == 0.0 for h in kept)
