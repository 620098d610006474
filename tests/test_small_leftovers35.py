"""Small leftovers of session 35: ``SoundIndex.tag(labels=[])`` refused as ``rank_texts(audio, [])``
is; a 0-sample waveform refused alike by every model; ``soundsift similar A B`` says once why B
cannot be searched by and goes on with A; the rebuild's header check read on threads (in order)
and announced for many files; a rebuild whose decoder cannot start says so instead of blaming a file.

FakeModel (tests/index_fakes.py) indexes; the tiny random CLAPs (tests/tiny_models.py) embed.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.errors import InvalidQuery, RebuildFailed
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel, WideModel

# each init_baseline encodes the 521 class names with MiniLM: once per run, not once per model
pytestmark = pytest.mark.usefixtures("minilm_memo")

SR = 16000


@pytest.fixture
def lib(tmp_path) -> Path:
    """Three short recordings and one file that cannot be decoded."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "a_tone.wav", tone(440, 1.5, SR), SR)
    write(lib / "b_noise.wav", noise(1.5, SR, seed=1), SR)
    write(lib / "c_chirp.wav", chirp(200, 3000, 1.5, SR), SR)
    (lib / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 8)
    return lib


@pytest.fixture
def idx(lib, tmp_path) -> Path:
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return idx


# -- 1. tag(labels=[]) and rank_texts(audio, []) ------------------------------------------------

def test_tag_and_rank_texts_refuse_an_empty_list_alike_before_decoding(idx):
    model = FakeModel()
    wave = tone(440, 1.0, SR)
    with SoundIndex.open(idx, model=model) as index:
        with pytest.raises(InvalidQuery, match=r"^tag needs at least one label, got an empty list; "
                                               r"leave labels out \(None\) for the default vocabulary$"):
            index.tag(wave, labels=[], sample_rate=SR)
        with pytest.raises(InvalidQuery, match=r"^tag needs at least one label, got an empty list"):
            index.tag_with_notes(wave, (), sample_rate=SR)
        with pytest.raises(InvalidQuery, match=r"^rank_texts needs at least one text, got an empty list$"):
            index.rank_texts(wave, [], sample_rate=SR)
        assert model.calls == []                            # refused before the audio was embedded
        assert len(index.tag(wave, labels=None, top=3, sample_rate=SR)) == 3     # None: the vocabulary
        assert [t["label"] for t in index.tag(wave, labels="rain", sample_rate=SR)] == ["rain"]


# -- 2. a 0-sample waveform ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def soundsift_tiny(tmp_path_factory):
    from engine.models import load_model
    from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig

    folder = tmp_path_factory.mktemp("soundsift_tiny") / "m"
    SoundsiftClap(SoundsiftClapConfig(window_seconds=2.0, residual_hidden=8)).init_baseline().save_pretrained(folder)
    return load_model(folder)


def test_every_model_refuses_a_zero_sample_waveform_naming_it(soundsift_tiny, tiny_clap_dir):
    from engine.models import load_model

    hf = load_model(tiny_clap_dir)
    for model in (soundsift_tiny, hf, FakeModel()):
        good = tone(440, 0.5, int(model.sample_rate))
        with pytest.raises(ValueError, match=r"^waveform 1: cannot embed an empty waveform \(0 samples\)"):
            model.embed_audio([good, np.zeros(0, np.float32)])
        with pytest.raises(ValueError, match=r"^waveform 0: "):
            model.embed_audio((np.zeros(0, np.float32),))
        one = model.embed_audio([good[:1]])                # one sample is a clip
        assert one.shape == (1, model.dim) and np.isfinite(one).all()


# -- 3. soundsift similar A B, B not searchable by -------------------------------------------------

def test_similar_by_several_says_why_one_cannot_be_searched_by_once_and_goes_on(lib, idx, monkeypatch):
    import engine.models
    from ui.cli import app

    model = FakeModel()
    monkeypatch.setattr(engine.models, "load_model", lambda *a, **k: model)
    broken, missing = lib / "broken.wav", lib / "gone.wav"
    result = CliRunner().invoke(app, ["similar", str(lib / "a_tone.wav"), str(broken), str(missing),
                                      "--index", str(idx), "--json"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert model.calls == []                                # nothing embedded: B was not decoded
    assert result.stderr.count(f"{broken}: could not be indexed: ") == 1, result.stderr
    assert result.stderr.count(f"{missing}: no such file or folder; left out") == 1, result.stderr
    assert '"path"' in result.stdout and str(lib / "a_tone.wav") in result.stdout
    none = CliRunner().invoke(app, ["similar", str(broken), str(missing), "--index", str(idx)],
                              env={"COLUMNS": "300"})
    assert none.exit_code == 1 and "none of the 2 AUDIO_FILEs can be searched by" in none.stderr, none.output
    assert model.calls == []


# -- 4. the header check: threads, in order, announced ---------------------------------------------

def test_header_check_keeps_the_order_of_paths_and_says_when_it_starts(lib, tmp_path, monkeypatch, caplog):
    from indexer import rebuild

    bad = []
    for i in range(5):
        (lib / f"bad{i}.wav").write_bytes(b"not audio" * (i + 1))
        bad.append(str(lib / f"bad{i}.wav"))
    good = sorted(str(p) for p in lib.glob("[abc]_*.wav"))
    paths = [bad[3], good[0], bad[0], bad[4], good[1], bad[1], good[2], bad[2]]
    monkeypatch.setattr(rebuild, "HEADER_NOTICE", 8, raising=False)
    with caplog.at_level(logging.INFO, logger="indexer.rebuild"):
        failed = rebuild._unreadable_headers(paths)
    assert list(failed) == [bad[3], bad[0], bad[4], bad[1], bad[2]]
    assert all("not readable as audio" in why for why in failed.values())
    assert "checking 8 indexed files can still be read …" in caplog.messages
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="indexer.rebuild"):
        assert list(rebuild._unreadable_headers(paths[:7])) == [bad[3], bad[0], bad[4], bad[1]]
    assert not [m for m in caplog.messages if m.startswith("checking")]


# -- 5. the decoder cannot start ------------------------------------------------------------------

def _exit_at_start(*args) -> None:
    """A decoder process that fails before taking any file (as one that cannot import would)."""
    raise SystemExit(3)


def test_rebuild_whose_decoder_processes_cannot_start_says_so_not_that_a_file_is_unreadable(
        lib, tmp_path, monkeypatch):
    from indexer.decode import DecodePool

    (lib / "broken.wav").unlink()
    idx = tmp_path / "idx2"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    monkeypatch.setattr(DecodePool, "worker_main", staticmethod(_exit_at_start))
    with pytest.raises(RebuildFailed) as e:
        build_index([lib], idx, WideModel(name="wide", fingerprint="wide-v1"), workers=1, progress=False,
                    rebuild=True)
    said = str(e.value)
    assert "the decoder could not be started: decoder processes could not start (exit code 3" in said, said
    assert "no file is at fault" in said and "could not be read this time" not in said, said
    assert "make it readable" not in said, said


def test_rebuild_without_ffmpeg_says_the_decoder_could_not_be_started(lib, tmp_path, monkeypatch):
    from engine.audio import probe
    from engine.errors import UnreadableAudio
    from tests.ffmpeg_files import encode

    unavailable = "FFmpeg could not be started"     # engine.ffmpeg_audio.FFMPEG_UNAVAILABLE

    (lib / "broken.wav").unlink()
    memo = encode(lib / "memo.m4a", "aac", tone(440, 1.0, 44100), 44100)
    idx = tmp_path / "idx3"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    monkeypatch.setitem(sys.modules, "av", None)            # `import av` fails: FFmpeg is not there
    with pytest.raises(UnreadableAudio) as one:
        probe(memo)
    assert one.value.reason.startswith(f"{unavailable} (PyAV: ")
    model = WideModel(name="wide", fingerprint="wide-v1")
    with pytest.raises(RebuildFailed) as e:
        build_index([lib], idx, model, workers=0, progress=False, rebuild=True)
    said = str(e.value)
    assert said.startswith(f"the decoder could not be started: {unavailable} (PyAV: "), said
    assert f"no file is at fault (it stopped at {memo})" in said and "could not be read this time" not in said
    assert "Nothing was embedded" in said and model.calls == []
