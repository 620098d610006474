"""A file converted to another format in its folder (rain_01.wav → rain_01.flac, original deleted)
keeps its tags, captions and library-sheet rows (indexer.reencodes); another sound given the
name, or a name two new files share, does not take them."""
from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console
from sqlalchemy import select

from engine.catalog import Caption, File, FileMetadata, SegmentRow, Tag
from indexer import build_index
from indexer.scan import ScannedFile
from indexer.user_tags import add_tags
from tests.conftest import catalog_session, noise, tone, write
from tests.index_fakes import FakeModel

RATE = 22050


@pytest.fixture
def lib(tmp_path) -> Path:
    lib = (tmp_path / "Library").resolve()
    write(lib / "Rain" / "rain_01.wav", noise(3.0, RATE, seed=1), RATE)
    write(lib / "Rain" / "rain_02.wav", noise(3.0, RATE, seed=2), RATE)
    write(lib / "beep.wav", tone(880, 1.0, RATE), RATE)
    return lib


def index(lib: Path, idx: Path):
    return build_index([str(lib)], idx, FakeModel(), workers=0, progress=False)


def given(idx: Path, path: Path) -> None:
    """What a user gives ``path``: a tag of theirs, a caption of theirs, a caption `soundsift caption
    --index` made, and a library sheet's description."""
    add_tags(idx, [path], ["keeper"])
    with catalog_session(idx, write=True) as s:
        fid = s.scalar(select(File.id).where(File.path == str(path)))
        s.add_all([Caption(file_id=fid, text="steady rain on a tin roof", source="user"),
                   Caption(file_id=fid, text="rain", source="blat"),
                   FileMetadata(file_id=fid, key="sheet:description", value="Rain, tin roof, steady")])


def held(idx: Path) -> dict[str, dict]:
    """path → tags, captions, sheet rows and segment ids of every indexed file."""
    with catalog_session(idx) as s:
        out = {}
        for f in s.scalars(select(File)):
            out[f.path] = {
                "tags": sorted(s.scalars(select(Tag.label).where(Tag.file_id == f.id))),
                "captions": sorted(s.execute(select(Caption.text, Caption.source).where(Caption.file_id == f.id)).all()),
                "sheet": sorted(s.execute(select(FileMetadata.key, FileMetadata.value)
                                          .where(FileMetadata.file_id == f.id, FileMetadata.key.like("sheet:%"))).all()),
                "segments": sorted(s.scalars(select(SegmentRow.id).where(SegmentRow.file_id == f.id)))}
        return out


def convert(old: Path, suffix: str, data: np.ndarray | None = None, **kw) -> Path:
    """``old`` written anew beside itself with ``suffix`` (its own audio, or ``data``), then deleted."""
    audio, sr = sf.read(old, dtype="float32")
    new = old.with_suffix(suffix)
    sf.write(new, audio if data is None else data, sr, **kw)
    old.unlink()
    return new


def test_a_wav_converted_to_flac_in_place_keeps_its_tags_captions_and_sheet_rows(lib, tmp_path, caplog):
    idx = tmp_path / "idx"
    index(lib, idx)
    wav = lib / "Rain" / "rain_01.wav"
    given(idx, wav)
    before = held(idx)[str(wav)]
    flac = convert(wav, ".flac", subtype="PCM_16")
    with caplog.at_level(logging.DEBUG, logger="indexer"):
        summary = index(lib, idx)
    after = held(idx)
    assert str(wav) not in after
    assert after[str(flac)]["tags"] == ["keeper"]
    assert after[str(flac)]["captions"] == [("rain", "blat"), ("steady rain on a tin roof", "user")]
    assert after[str(flac)]["sheet"] == [("sheet:description", "Rain, tin roof, steady")]
    assert not set(after[str(flac)]["segments"]) & set(before["segments"])     # its vectors are its own
    d = summary.to_dict()
    assert (d["reencoded"], d["updated"], d["added"], d["removed"]) == (1, 1, 0, 0)
    assert d["reencoded_files"] == [{"old": str(wav), "new": str(flac)}] and d["reencoded_files_more"] == 0
    assert d["totals"]["files"] == 3
    assert f"{wav} was re-encoded as {flac}" in caplog.text
    assert "gone from the library carried" not in caplog.text


def test_another_sound_given_the_name_does_not_inherit_them(lib, tmp_path, caplog):
    idx = tmp_path / "idx"
    index(lib, idx)
    wav = lib / "Rain" / "rain_01.wav"
    given(idx, wav)
    flac = convert(wav, ".flac", data=tone(440, 3.0, RATE))       # the same length, another sound
    with caplog.at_level(logging.WARNING):
        summary = index(lib, idx)
    after = held(idx)
    assert str(wav) not in after
    assert after[str(flac)]["tags"] == [] and after[str(flac)]["captions"] == [] and after[str(flac)]["sheet"] == []
    assert (summary.reencoded, summary.added, summary.removed, summary.reencoded_files) == (0, 1, 1, [])
    assert f"{wav} (keeper, caption: steady rain on a tin roof" in caplog.text     # said as any deleted file


def test_a_name_two_new_files_share_pairs_neither(lib, tmp_path):
    idx = tmp_path / "idx"
    index(lib, idx)
    wav = lib / "Rain" / "rain_01.wav"
    given(idx, wav)
    audio, sr = sf.read(wav, dtype="float32")
    sf.write(wav.with_suffix(".ogg"), audio, sr, format="OGG", subtype="VORBIS")
    flac = convert(wav, ".flac", subtype="PCM_16")
    summary = index(lib, idx)
    after = held(idx)
    assert after[str(flac)]["tags"] == [] and after[str(wav.with_suffix(".ogg"))]["tags"] == []
    assert (summary.reencoded, summary.added, summary.removed) == (0, 2, 1)


def test_candidates_are_one_deleted_and_one_new_file_of_a_folder_and_name():
    from indexer.reencodes import candidates
    new = [ScannedFile(p, 1, 1) for p in ("/l/a.flac", "/l/b.flac", "/l/b.ogg", "/l/c.wav", "/m/d.wav", "/l/e.mp3")]
    deleted = ["/l/a.wav", "/l/b.wav", "/l/c.aiff", "/l/c.aif", "/l/d.wav", "/l/e.wav"]
    assert candidates(deleted, new) == {"/l/a.flac": "/l/a.wav", "/l/e.mp3": "/l/e.wav"}


def test_the_lengths_must_agree_and_the_vectors_be_close():
    from indexer.reencodes import LENGTH_TOLERANCE_S, MIN_COSINE, same_recording
    v = np.array([1.0, 0.0], np.float32)
    segments = np.array([[1.0, 0.1], [1.0, -0.1]], np.float32)
    assert same_recording(10.0, v, 10.09, segments)                    # within 1 %
    assert not same_recording(10.0, v, 10.2, segments)
    assert same_recording(1.0, v, 1.0 + LENGTH_TOLERANCE_S * 0.9, segments)   # a short file: 50 ms
    assert not same_recording(1.0, v, 1.0 + LENGTH_TOLERANCE_S * 1.1, segments)
    off = np.array([[np.sqrt(1 - (MIN_COSINE - 0.01) ** 2), MIN_COSINE - 0.01]], np.float32)
    assert not same_recording(10.0, np.array([0.0, 1.0], np.float32), 10.0, off)
    assert not same_recording(10.0, None, 10.0, segments)              # no stored vector read


def test_the_summary_table_names_the_first_pairs():
    from ui.cli import cmd_index
    buf = io.StringIO()
    real, cmd_index.out_console = cmd_index.out_console, Console(file=buf, width=250)
    try:
        cmd_index._print_summary({
            "index": "i", "generation": 2, "added": 0, "updated": 5, "removed": 0, "unchanged": 1, "failed": 0,
            "reencoded": 5, "reencoded_files": [{"old": f"/l/r_{i}.wav", "new": f"/l/r_{i}.flac"} for i in range(5)],
            "n_segments": 5, "audio_seconds": 1.0, "seconds": 1.0, "files_per_second": 1.0, "x_realtime": 1.0,
            "timings": {}, "totals": {"files": 6, "segments": 6, "errors": 0}})
    finally:
        cmd_index.out_console = real
    said = " ".join(re.sub(r"[│┃]", " ", buf.getvalue()).split())
    assert ("re-encoded in place 5 of the updated (kept their tags, captions and sheet rows): /l/r_0.wav → r_0.flac, "
            "/l/r_1.wav → r_1.flac, /l/r_2.wav → r_2.flac and 2 more (--verbose names all)") in said


@pytest.mark.parametrize("n_files, budget, kind", [(40, 1 << 30, "flat"), (120, 1 << 30, "ivf-flat"),
                                                   (120, 100_000, "ivf-sq8")])
def test_stored_file_vectors_are_read_from_every_index_type(tmp_path, n_files, budget, kind):
    """The old file's vector the new one is compared with: its segments' mean, from an exact index,
    an IVF one (no map from id to vector kept) or a compressed one's float16 sidecar."""
    import functools

    from engine.audio import AudioInfo
    from engine.index_choice import choose_index
    from engine.layout import IndexLayout
    from indexer.write import Changes, IndexedFile, IndexWriter
    dim, per_file = 32, 10
    vecs = np.random.default_rng(0).standard_normal((n_files * per_file, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    info = AudioInfo("x", 16000, 16000, 1, "WAV", "PCM_16")
    added = [IndexedFile(f"/lib/f{i:04d}.wav", 1, 1, info, 1.0, [(0.5 * j, 0.5 * j + 1.0) for j in range(per_file)],
                         vecs[i * per_file:(i + 1) * per_file]) for i in range(n_files)]
    meta = {"model_name": "synthetic", "model_fingerprint": "synthetic-v1", "dim": dim, "sample_rate": 16000,
            "segment_policy": {"window": 1.0, "hop": 0.5}}
    chooser = functools.partial(choose_index, exact_max=500, min_nlist=8)
    with IndexWriter(IndexLayout(tmp_path / "idx"), memory_budget=budget, chooser=chooser) as w:
        w.commit(Changes(add=added), meta)
        assert w.meta["index_kind"] == kind
        got = w.file_vectors(["/lib/f0003.wav", "/lib/f0007.wav", "/lib/none.wav"], dim)
    assert sorted(got) == ["/lib/f0003.wav", "/lib/f0007.wav"]
    for i in (3, 7):
        want = vecs[i * per_file:(i + 1) * per_file].mean(axis=0)
        assert float(got[f"/lib/f{i:04d}.wav"] @ (want / np.linalg.norm(want))) > 0.999


class _Stopped(FakeModel):
    """Ctrl-C at the run's first embedding."""

    def embed_audio(self, waveforms):
        raise KeyboardInterrupt


def test_a_run_stopped_before_the_new_file_is_embedded_keeps_the_old_row_for_the_next(lib, tmp_path):
    idx = tmp_path / "idx"
    index(lib, idx)
    wav = lib / "Rain" / "rain_01.wav"
    given(idx, wav)
    flac = convert(wav, ".flac", subtype="PCM_16")
    with pytest.raises(KeyboardInterrupt):
        build_index([str(lib)], idx, _Stopped(), workers=0, progress=False)
    assert held(idx)[str(wav)]["tags"] == ["keeper"]        # not dropped while its pair is undecided
    summary = index(lib, idx)
    after = held(idx)
    assert str(wav) not in after and after[str(flac)]["tags"] == ["keeper"]
    assert summary.reencoded == 1
