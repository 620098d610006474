"""Keyword-to-caption: tags → varied natural captions."""
from __future__ import annotations

import random

import pytest

from engine.errors import ModelUnavailable
from trainer.captions import (Seq2SeqCaptioner, captions_from_tags, clean_label, join_labels,
                              keyword_to_caption, label_phrasings, tags_phrasings, with_article)


def test_one_label_gets_the_bare_label_and_the_zero_shot_prompt_first():
    phrasings = label_phrasings("Dog_bark")
    assert phrasings[:2] == ["Dog bark", "This is a sound of dog bark."]
    assert "The sound of a dog bark." in phrasings
    assert len(set(phrasings)) == len(phrasings) >= 8


def test_articles_and_cleaning():
    assert with_article("owl") == "an owl"
    assert with_article("dog bark") == "a dog bark"
    assert with_article("rain") == "rain"            # mass noun
    assert with_article("footsteps") == "footsteps"  # plural
    assert clean_label("  car-horn__honk. ") == "car horn honk"
    assert join_labels(["a", "b", "c"]) == "a, b and c"


def test_several_tags_are_joined_and_audioset_alternatives_shortened():
    phrasings = tags_phrasings(["Bird vocalization, bird call, bird song", "Rain", "TV"])
    assert phrasings[0] == "bird vocalization, rain and TV"
    assert phrasings[1] == "This is a sound of bird vocalization, rain and TV."
    assert "A bird vocalization with rain and TV in the background." in phrasings


def test_a_comma_in_brackets_does_not_cut_a_label():
    phrasings = tags_phrasings(["Arrow", "Roaring cats (lions, tigers)", "Roar"])
    assert phrasings[0] == "arrow, roaring cats (lions, tigers) and roar"
    assert tags_phrasings(["Walk, footsteps", "Music"])[0] == "walk and music"


def test_deterministic_without_rng_varied_with_rng():
    assert captions_from_tags(["siren"], 2) == ["siren", "This is a sound of siren."]
    assert keyword_to_caption(["siren"]) == "This is a sound of siren."
    assert captions_from_tags([], 3) == [] and keyword_to_caption([]) == ""
    rng = random.Random(0)
    seen = {keyword_to_caption(["siren", "traffic"], rng) for _ in range(40)}
    assert len(seen) >= 5
    assert all("siren" in s.lower() and "traffic" in s.lower() for s in seen)
    three = captions_from_tags(["a", "b", "c", "d"], 3, rng=random.Random(1))
    assert len(set(three)) == 3 and all("d" not in s.split() for s in three)   # max 3 tags named


def test_seq2seq_captioner_needs_a_local_model_folder(tmp_path):
    with pytest.raises(ModelUnavailable, match="config.json missing"):
        Seq2SeqCaptioner(tmp_path)
