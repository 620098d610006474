"""Zero-shot vocabularies: the shipped list, AudioSet's for soundsift-base, the user's files."""
from __future__ import annotations

import pytest

from engine.errors import InvalidQuery
from engine.vocabulary import default_labels, load_labels_file, parse_labels
from query_fixtures import FakeModel


def test_shipped_vocabulary_is_a_few_hundred_distinct_everyday_sounds():
    labels = default_labels(FakeModel())
    assert 200 <= len(labels) <= 1000
    assert len(set(labels)) == len(labels) and all(l == l.strip() and l for l in labels)
    for expected in ["dog barking", "rain", "door knock", "car horn", "telephone ringing",
                     "smoke alarm", "male speech", "piano", "mouse click", "hammering"]:
        assert expected in labels


def test_soundsift_base_uses_the_audioset_classes():
    labels = default_labels("soundsift-base")
    assert len(labels) == 521 and labels[0] == "Speech"
    assert default_labels("soundsift-fast") == labels
    assert {"Dog", "Rain", "Telephone bell ringing", "Piano"} <= set(labels)
    assert default_labels("laion/clap-htsat-unfused") == default_labels(FakeModel())


def test_labels_file_one_per_line(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("# my sounds\n\ndog\n  cat meowing  \ndog\n#not this\nglass breaking\n", encoding="utf-8")
    assert load_labels_file(f) == ["dog", "cat meowing", "glass breaking"]


def test_labels_file_as_csv(tmp_path):
    f = tmp_path / "classes.csv"
    f.write_text('index,mid,display_name\n0,/m/1,"Speech, talking"\n1,/m/2,Dog\n', encoding="utf-8")
    assert load_labels_file(f) == ["Speech, talking", "Dog"]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InvalidQuery, match="display_name"):
        load_labels_file(bad)


def test_unusable_labels_files_are_reported(tmp_path):
    with pytest.raises(InvalidQuery, match="does not exist"):
        load_labels_file(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(InvalidQuery, match="no labels"):
        load_labels_file(empty)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\x00dog")     # not a UTF-16 byte-order mark (ff fe): that reads as UTF-16
    with pytest.raises(InvalidQuery, match="UTF-8"):
        load_labels_file(binary)


def test_parse_labels():
    assert parse_labels("dog, rain ,car horn,,dog") == ["dog", "rain", "car horn"]
    with pytest.raises(InvalidQuery, match="comma-separated"):
        parse_labels(" , ")
