"""engine.export: search results written out as files (whole files copied, spans cut out)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import noise, tone, write
from engine.errors import InvalidOutput, UnreadableAudio
from engine.export import MANIFEST, excerpt_subtype, excerpt_wav, export_hits
from engine.query import Hit

SR = 48_000


def hit(path: Path, start: float, end: float, duration: float, score: float = 0.5) -> Hit:
    return Hit(path=str(path), start=start, end=end, score=score, file_id=1, segment_id=1,
               duration=duration, format="WAV", sample_rate=SR, folder=str(path.parent))


def read(data: bytes) -> tuple[np.ndarray, sf._SoundFileInfo]:
    return sf.read(io.BytesIO(data), dtype="float32", always_2d=True)[0], sf.info(io.BytesIO(data))


def test_an_excerpt_is_the_span_at_the_sources_rate_channels_and_bit_depth(tmp_path):
    stereo = np.random.default_rng(0).uniform(-0.5, 0.5, (5 * SR, 2)).astype("float32")
    src = tmp_path / "field.wav"
    sf.write(src, stereo, SR, subtype="PCM_24")
    data, start, end = excerpt_wav(src, 1.25, 3.5, fade=0)
    audio, info = read(data)
    assert (start, end) == (1.25, 3.5)
    assert (info.samplerate, info.channels, info.subtype) == (SR, 2, "PCM_24")
    as_stored = sf.read(src, dtype="float32", always_2d=True)[0]
    np.testing.assert_array_equal(audio, as_stored[int(1.25 * SR):int(3.5 * SR)])
    with sf.SoundFile(io.BytesIO(data)) as f:
        assert f.comment == f"1.250-3.500 s of {src} (soundsift export)"


def test_fades_only_where_the_recording_was_cut(tmp_path):
    src = write(tmp_path / "dc.wav", np.full(4 * SR, 0.5, dtype="float32"), SR)
    middle, _ = read(excerpt_wav(src, 1.0, 2.0)[0])
    assert abs(middle[0, 0]) < 0.01 and abs(middle[-1, 0]) < 0.01       # cut on both sides: faded
    assert middle[len(middle) // 2, 0] == pytest.approx(0.5, abs=1e-4)
    assert middle[int(0.005 * SR), 0] == pytest.approx(0.5, abs=1e-4)    # 5 ms of fade, no more
    head, _ = read(excerpt_wav(src, 0.0, 1.0)[0])
    assert head[0, 0] == pytest.approx(0.5, abs=1e-4) and abs(head[-1, 0]) < 0.01
    tail, _ = read(excerpt_wav(src, 3.0, 4.0)[0])
    assert abs(tail[0, 0]) < 0.01 and tail[-1, 0] == pytest.approx(0.5, abs=1e-4)


def test_sample_formats_of_excerpts(tmp_path):
    assert excerpt_subtype("PCM_16") == "PCM_16" and excerpt_subtype("FLOAT") == "FLOAT"
    assert excerpt_subtype("MPEG_LAYER_III") == "PCM_16" and excerpt_subtype("VORBIS") == "PCM_16"
    assert excerpt_subtype("ALAC_24") == "PCM_24"                     # what WAV cannot hold
    ints = (np.random.default_rng(1).integers(-2**31, 2**31 - 1, SR, dtype=np.int64)).astype(np.int32)
    src = tmp_path / "deep.wav"
    sf.write(src, ints, SR, subtype="PCM_32")
    data = excerpt_wav(src, 0.0, 1.0)[0]
    np.testing.assert_array_equal(sf.read(io.BytesIO(data), dtype="int32")[0], ints)   # 32-bit kept exactly
    ogg = write(tmp_path / "tone.ogg", tone(440, 2.0, 44_100), 44_100)
    assert read(excerpt_wav(ogg, 0.5, 1.5)[0])[1].subtype == "PCM_16"


def test_a_span_outside_the_file_is_one_clear_error(tmp_path):
    src = write(tmp_path / "short.wav", tone(440, 1.0, SR), SR)
    with pytest.raises(UnreadableAudio, match=r"short\.wav: the span 5\.00–6\.00 s is not inside the file"):
        excerpt_wav(src, 5.0, 6.0)


def test_export_copies_whole_files_cuts_spans_and_keeps_going(tmp_path):
    lib = tmp_path / "lib"
    whole = write(lib / "dog.wav", tone(440, 2.0, SR), SR)
    long = write(lib / "storm.flac", noise(14.0, SR, seed=3), SR)
    gone = write(lib / "gone.wav", tone(220, 1.0, SR), SR)
    gone.unlink()
    hits = [hit(long, 4.0, 14.0, 14.0, 0.9), hit(gone, 0.0, 1.0, 1.0, 0.8), hit(whole, 0.0, 2.0, 2.0, 0.7)]
    out = tmp_path / "session" / "picks"
    result = export_hits(hits, out, pad=0.5, query="thunder")

    assert [(w.path.name, w.kind) for w in result.written] == [
        ("01_storm_3.5-14.0s.wav", "excerpt"), ("03_dog.wav", "file")]   # the pad stops at the file's end
    assert (out / "03_dog.wav").read_bytes() == whole.read_bytes()
    cut, info = read((out / "01_storm_3.5-14.0s.wav").read_bytes())
    assert len(cut) == int(10.5 * SR) and info.samplerate == SR
    assert result.failed == [(str(gone), "not found: deleted or renamed since it was listed")]
    with open(out / MANIFEST, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["exported"], r["kind"], r["source"], r["start"], r["end"], r["rank"], r["query"]) for r in rows] == [
        ("01_storm_3.5-14.0s.wav", "excerpt", str(long), "3.500", "14.000", "1", "thunder"),
        ("03_dog.wav", "file", str(whole), "0.000", "2.000", "3", "thunder")]

    again = export_hits(hits[2:], out, whole_files=True, query="dog")     # nothing is overwritten
    assert [w.path.name for w in again.written] == ["01_dog.wav"]
    more = export_hits(hits[:1], out, whole_files=True, query="storm")
    assert [w.path.name for w in more.written] == ["01_storm.flac"]
    assert (out / "01_storm.flac").read_bytes() == long.read_bytes()
    twice = export_hits(hits[2:], out, whole_files=True, query="dog")
    assert [w.path.name for w in twice.written] == ["01_dog (2).wav"]
    with open(out / MANIFEST, newline="") as f:
        assert [r["query"] for r in csv.DictReader(f)] == ["thunder", "thunder", "dog", "storm", "dog"]


def test_export_into_a_file_is_refused(tmp_path):
    src = write(tmp_path / "dog.wav", tone(440, 1.0, SR), SR)
    with pytest.raises(InvalidOutput, match="is a file; --export must name a folder"):
        export_hits([hit(src, 0.0, 1.0, 1.0)], src)


def test_a_zip_of_results_holds_what_the_folder_would(tmp_path):
    import zipfile

    from engine.export import NOT_EXPORTED, export_zip
    lib = tmp_path / "lib"
    dog = write(lib / "dog.wav", tone(440, 2.0, SR), SR)
    storm = write(lib / "storm.flac", noise(14.0, SR, seed=3), SR)
    hits = [hit(storm, 4.0, 14.0, 14.0, 0.9), hit(lib / "gone.wav", 0.0, 1.0, 1.0, 0.8), hit(dog, 0.0, 2.0, 2.0, 0.7)]
    data, result = export_zip(hits, query="storm")
    folder = export_hits(hits, tmp_path / "out", query="storm")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == sorted([w.path.name for w in folder.written] + [MANIFEST, NOT_EXPORTED])
        for w in folder.written:
            assert zf.read(w.path.name) == w.path.read_bytes()
        assert zf.read(MANIFEST) == (tmp_path / "out" / MANIFEST).read_bytes()
        gone = f"{lib / 'gone.wav'}: not found: deleted or renamed since it was listed\n"
        assert zf.read(NOT_EXPORTED).decode() == gone
    assert [w.path for w in result.written] == [Path("01_storm_4.0-14.0s.wav"), Path("03_dog.wav")]


def test_a_folder_that_fills_up_stops_the_export_with_one_clear_error(tmp_path, monkeypatch):
    import errno
    lib = tmp_path / "lib"
    dog = write(lib / "dog.wav", tone(440, 2.0, SR), SR)
    storm = write(lib / "storm.flac", noise(14.0, SR, seed=3), SR)
    out = tmp_path / "out"

    def full(self, data):
        self.write_text("partial")                 # what a full disk leaves
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(InvalidOutput, match=r"01_storm_4\.0-14\.0s\.wav: cannot write the excerpt \(No space left"):
        export_hits([hit(dog, 0.0, 2.0, 2.0), hit(storm, 4.0, 14.0, 14.0)][::-1], out)
    assert sorted(p.name for p in out.iterdir()) == []          # the half-written excerpt is gone
    with pytest.raises(InvalidOutput, match=r"02_storm_4\.0-14\.0s\.wav: cannot write the excerpt"):
        export_hits([hit(dog, 0.0, 2.0, 2.0), hit(storm, 4.0, 14.0, 14.0)], out, query="q")
    with open(out / MANIFEST, newline="") as f:                 # what was written before it is recorded
        assert [r["exported"] for r in csv.DictReader(f)] == ["01_dog.wav"]
    assert (out / "01_dog.wav").read_bytes() == dog.read_bytes()


def test_exported_names_are_valid_on_any_drive(tmp_path):
    from engine.export import portable_name
    src = write(tmp_path / "lib" / 'Take 1: door "slam"?.wav', tone(440, 1.0, SR), SR)
    result = export_hits([hit(src, 0.0, 1.0, 1.0)], tmp_path / "usb")
    assert [w.path.name for w in result.written] == ["01_Take 1_ door _slam__.wav"]
    assert portable_name("a|b*c<d>e\\f.flac") == "a_b_c_d_e_f.flac" and portable_name("end. .wav") == "end.wav"


def test_an_exported_take_is_named_by_its_marker(tmp_path):
    """A hit that is a marked take carries the marker's name into the excerpt's file name (made
    valid on any drive), padded (handles) or not; a keyword hit around a marker does not."""
    long = write(tmp_path / "lib" / "street.wav", noise(14.0, SR, seed=4), SR)
    take = hit(long, 4.5, 11.0, 14.0)
    take.marker, take.marker_at = "Siren / passing", 4.5
    around = hit(long, 0.0, 10.0, 14.0)
    around.marker, around.marker_at = "Siren / passing", 4.5
    out = tmp_path / "picks"
    assert [w.path.name for w in export_hits([take, around], out).written] == [
        "01_street_Siren _ passing_4.5-11.0s.wav", "02_street_0.0-10.0s.wav"]
    assert [w.path.name for w in export_hits([take], out, pad=0.5).written] == [
        "01_street_Siren _ passing_4.0-11.5s.wav"]
    from ui.components.downloads import downloads
    from ui.components.library import FileRecord
    record = FileRecord(1, str(long), 14.0, SR, 1, "WAV", long.stat().st_size, 0)
    assert downloads(take, record)[0]["file_name"] == "street_Siren _ passing_4.5-11.0s.wav"
