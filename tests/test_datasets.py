"""Training data: every source format, crops, deterministic randomness, augmentations."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.errors import InvalidDataset
from tests.conftest import chirp, noise, tone, write
from trainer import augment
from trainer.datasets import (AudioTextDataset, EpochBatchSampler, Item, TarMember, collate, drop_missing,
                              join_captions, load_clip, read_class_folders, read_clotho, read_items,
                              read_manifest, read_webdataset, repeat_pad)

SR = 16000


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lib")
    write(root / "sounds" / "beep.wav", tone(1000, 0.5, SR), SR)
    write(root / "sounds" / "hiss.flac", noise(2.0, 22050, seed=1), 22050)
    write(root / "sounds" / "sweep.wav", np.stack([chirp(200, 4000, 1.5, SR)] * 2, axis=1), SR)
    return root


# --------------------------------------------------------------------------- formats

def test_jsonl_manifest_reads_captions_tags_and_relative_paths(library):
    m = library / "train.jsonl"
    m.write_text(
        json.dumps({"audio": "sounds/beep.wav", "captions": ["A beep.", "A short tone."], "tags": ["beep"]}) + "\n"
        + "\n"
        + json.dumps({"path": str(library / "sounds/hiss.flac"), "caption": "Static hiss", "source": "synth"}) + "\n"
        + json.dumps({"audio": "sounds/sweep.wav", "tags": "sweep; tone"}) + "\n")
    items = read_manifest(m)
    assert [Path(i.audio).name for i in items] == ["beep.wav", "hiss.flac", "sweep.wav"]
    assert items[0].captions == ["A beep.", "A short tone."] and items[0].tags == ["beep"]
    assert Path(items[0].audio).is_absolute() and Path(items[0].audio).is_file()
    assert items[1].captions == ["Static hiss"] and items[1].source == "synth"
    assert items[2].captions == [] and items[2].tags == ["sweep", "tone"]
    assert items[2].caption() == "This is a sound of sweep and tone."   # keyword-to-caption


def test_csv_manifest_splits_multiple_captions_and_tags(library):
    m = library / "train.csv"
    m.write_text("audio,caption,tags\n"
                 "sounds/beep.wav,A beep.|A short tone,beep;electronic\n"
                 "sounds/hiss.flac,Hiss,\n")
    items = read_manifest(m)
    assert items[0].captions == ["A beep.", "A short tone"] and items[0].tags == ["beep", "electronic"]
    assert items[1].captions == ["Hiss"] and items[1].tags == []


@pytest.mark.parametrize("text,needle", [
    ("audio,caption\n,no audio\n", "train.csv:2: no audio path"),
    ("audio,caption\nsounds/beep.wav,\n", "neither captions nor tags"),
])
def test_csv_manifest_errors_name_the_line(library, tmp_path, text, needle):
    m = tmp_path / "train.csv"
    m.write_text(text)
    with pytest.raises(InvalidDataset, match=needle):
        read_manifest(m)


def test_bad_jsonl_line_is_reported(tmp_path, caplog):
    """A bad line costs that line, said with its number (session 39: it stopped the run); a file
    whose lines are mostly not JSON objects is refused."""
    m = tmp_path / "bad.jsonl"
    m.write_text('{"audio": "a.wav", "caption": "x"}\n{not json\n')
    [item] = read_manifest(m)
    assert item.captions == ["x"]
    assert "1 of 2 rows left out, e.g. " in caplog.text and "bad.jsonl:2: not valid JSON" in caplog.text
    m.write_text('{"audio": "a.wav", "caption": "x"}\n{not json\n[1, 2]\n')
    with pytest.raises(InvalidDataset, match=r"bad.jsonl: 2 of its 3 rows are not JSON objects, e.g. .*bad.jsonl:2: "
                                             r"not valid JSON"):
        read_manifest(m)


def test_class_folders_tag_each_file_with_its_folder(tmp_path):
    write(tmp_path / "dog_bark" / "1.wav", tone(300, 0.2, SR), SR)
    write(tmp_path / "dog_bark" / "2.wav", tone(320, 0.2, SR), SR)
    write(tmp_path / "rain" / "a.flac", noise(0.2, SR), SR)
    (tmp_path / "rain" / "notes.txt").write_text("not audio")
    (tmp_path / "rain" / "._a.flac").write_bytes(b"\x00\x05\x16\x07" + bytes(60))   # copied by a Mac
    write(tmp_path / "__MACOSX" / "rain" / "a.flac", noise(0.2, SR), SR)             # an unpacked zip's
    items = read_class_folders(tmp_path)
    assert [(Path(i.audio).name, i.tags) for i in items] == [
        ("1.wav", ["dog bark"]), ("2.wav", ["dog bark"]), ("a.flac", ["rain"])]
    assert items[0].caption() == "This is a sound of dog bark."


def test_clotho_csv(library):
    csv_path = library / "clotho_captions_development.csv"
    csv_path.write_text("file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
                        "beep.wav,a beep,a tone,,a sine,a whistle\n")
    items = read_clotho(csv_path, library / "sounds")
    assert len(items) == 1
    assert items[0].audio == str(library / "sounds" / "beep.wav")
    assert items[0].captions == ["a beep", "a tone", "a sine", "a whistle"]
    with pytest.raises(InvalidDataset, match="not a Clotho CSV"):
        (library / "other.csv").write_text("audio,caption\nx.wav,y\n")
        read_clotho(library / "other.csv")


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_shard(path: Path) -> list[np.ndarray]:
    """A LAION-Audio-630K-style shard: <key>.flac + <key>.json with "text" and "tag"."""
    clips = [tone(440, 0.6, 48000), noise(0.4, 48000, seed=3)]
    with tarfile.open(path, "w") as tar:
        for i, (clip, text) in enumerate(zip(clips, (["a tone", "a beep"], "static"))):
            buf = io.BytesIO()
            sf.write(buf, clip, 48000, format="FLAC")
            _add(tar, f"part/{i:06d}.flac", buf.getvalue())
            _add(tar, f"part/{i:06d}.json", json.dumps({"text": text, "tag": ["sound"],
                                                        "original_data": {"id": i}}).encode())
        _add(tar, "part/000009.json", json.dumps({"text": "audio missing"}).encode())
    return clips


def test_webdataset_shard(tmp_path):
    clips = make_shard(tmp_path / "shard-000000.tar")
    for spec in (tmp_path / "shard-000000.tar", tmp_path, str(tmp_path / "shard-*.tar")):
        items = read_webdataset(spec)
        assert [i.captions for i in items] == [["a tone", "a beep"], ["static"]]
        assert all(isinstance(i.audio, TarMember) and i.tags == ["sound"] for i in items)
    x = load_clip(items[0].audio, 48000, None, None)
    np.testing.assert_allclose(x, clips[0], atol=1e-4)          # FLAC is lossless (16-bit)
    y = load_clip(items[1].audio, SR, 0.25, None)                # decoded and resampled from memory
    assert y.shape == (4000,) and y.dtype == np.float32
    with pytest.raises(InvalidDataset, match="no .tar shards"):
        read_webdataset(tmp_path / "empty-dir-*.tar")


def test_read_items_dispatch_and_unknown_format(library):
    assert len(read_items("folders", library)) == 3
    with pytest.raises(InvalidDataset, match="unknown dataset format"):
        read_items("parquet", library)


def test_drop_missing_leaves_out_unreadable_files(library, tmp_path):
    (tmp_path / "broken.wav").write_bytes(b"RIFF nonsense")
    items = [Item(str(library / "sounds/beep.wav"), ["x"]), Item(str(tmp_path / "broken.wav"), ["y"]),
             Item(str(tmp_path / "absent.wav"), ["z"])]
    assert [i.captions for i in drop_missing(items)] == [["x"]]
    with pytest.raises(InvalidDataset, match="none of the 2"):
        drop_missing(items[1:])


# --------------------------------------------------------------------------- crops and determinism

def test_crops_have_window_length_and_are_deterministic(library):
    items = read_class_folders(library)         # beep 0.5 s, hiss 2 s at 22.05 kHz, stereo sweep 1.5 s
    ds = AudioTextDataset(items, SR, 1.0, train=True, augment=augment.AugmentConfig(), seed=3)
    for i in range(len(ds)):
        a = ds[(0, i)]
        assert a["audio"].shape == (SR,) and a["audio"].dtype == np.float32 and np.isfinite(a["audio"]).all()
        np.testing.assert_array_equal(a["audio"], ds[(0, i)]["audio"])        # pure function of the key
        assert a["text"] == ds[(0, i)]["text"]
    hiss = [i for i, it in enumerate(items) if it.audio.endswith("hiss.flac")][0]
    assert not np.array_equal(ds[(0, hiss)]["audio"], ds[(1, hiss)]["audio"])  # new epoch, new crop

    val = AudioTextDataset(items, SR, 1.0, train=False)
    first = val[hiss]["audio"]
    full = load_clip(items[hiss].audio, SR, None, None)
    np.testing.assert_allclose(first, full[:SR], atol=1e-6)                   # validation: first window
    beep = [i for i, it in enumerate(items) if it.audio.endswith("beep.wav")][0]
    short = load_clip(items[beep].audio, SR, None, None)
    np.testing.assert_array_equal(val[beep]["audio"], repeat_pad(short, SR))   # short clips repeat


def test_mixing_joins_captions(library):
    items = [Item(str(library / "sounds/beep.wav"), ["A beep."]), Item(str(library / "sounds/hiss.flac"), ["Hiss."])]
    ds = AudioTextDataset(items, SR, 0.5, train=True, augment=augment.AugmentConfig(
        gain_db=0, loudness=0, band_limit=0, codec=0, noise=0, reverb=0, mix=1.0), seed=0)
    assert ds[(0, 0)]["text"] == "A beep and hiss"
    assert ds[(0, 1)]["text"] == "Hiss and a beep"
    assert join_captions("A dog barks.", "") == "A dog barks"


def test_collate_stacks_batch(library):
    ds = AudioTextDataset(read_class_folders(library), SR, 0.25, train=False)
    batch = collate([ds[0], ds[1]])
    assert tuple(batch["audio"].shape) == (2, 4000) and batch["text"] == [ds[0]["text"], ds[1]["text"]]
    assert batch["index"].tolist() == [0, 1]


def test_epoch_batch_sampler_permutes_and_resumes():
    s = EpochBatchSampler(10, 3, seed=5)
    it = iter(s)
    batches = [next(it) for _ in range(9)]                      # 3 batches per epoch, 3 epochs
    for e in range(3):
        keys = [k for b in batches[3 * e:3 * e + 3] for k in b]
        assert {k[0] for k in keys} == {e}
        assert len({k[1] for k in keys}) == 9                  # no repeats inside an epoch
    resumed = iter(EpochBatchSampler(10, 3, seed=5, start_batch=4))
    assert [next(resumed) for _ in range(5)] == batches[4:]
    with pytest.raises(InvalidDataset, match="larger than the training set"):
        EpochBatchSampler(2, 3, seed=0)


# --------------------------------------------------------------------------- augmentations

def _band_energy(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_band_limit_removes_content_above_the_new_nyquist():
    x = tone(300, 1.0, SR) + tone(6000, 1.0, SR)
    y = augment.band_limit(x, SR, np.random.default_rng(0), rate=8000)
    assert y.shape == x.shape
    assert _band_energy(y, SR, 4500, 8000) < 1e-4 * _band_energy(x, SR, 4500, 8000)
    assert _band_energy(y, SR, 200, 400) > 0.9 * _band_energy(x, SR, 200, 400)


def test_codec_round_trip_keeps_length_and_sound():
    x = tone(440, 1.0, SR, amp=0.9) * 1.5           # above full scale: must not clip
    for seed in (0, 1, 2, 3):                       # covers both mp3 and ogg
        y = augment.codec_round_trip(x, SR, np.random.default_rng(seed))
        assert y.shape == x.shape and y.dtype == np.float32
        c = np.corrcoef(x[2000:-2000], y[2000:-2000])[0, 1]
        assert c > 0.95
        assert abs(augment.rms(y) / augment.rms(x) - 1) < 0.1


def test_codec_round_trip_of_a_long_clip_does_not_crash():
    """libsndfile 1.2.2's Vorbis encoder crashed the process when handed a minute of audio in one
    write (whole-clip training on long recordings); the round trip writes in blocks."""
    import subprocess
    import sys
    script = ("import numpy as np; from trainer import augment\n"
              "x = (0.1 * np.random.default_rng(0).standard_normal(130 * 44100)).astype(np.float32)\n"
              "rng = next(np.random.default_rng(s) for s in range(100) if np.random.default_rng(s).integers(2) == 1)\n"
              "y = augment.codec_round_trip(x, 44100, rng)\n"
              "assert y.shape == x.shape; print('ogg ok')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=str(Path(__file__).resolve().parents[1]))
    assert done.returncode == 0 and "ogg ok" in done.stdout, (done.returncode, done.stderr[-500:])


def test_noise_reverb_loudness_gain_change_the_channel_but_not_the_length():
    rng = np.random.default_rng(0)
    x = tone(500, 1.0, SR)
    noisy = augment.add_noise(x, rng, (10.0, 10.0))
    snr = 20 * np.log10(augment.rms(x) / augment.rms(noisy - x))
    assert snr == pytest.approx(10.0, abs=0.01)
    wet = augment.synthetic_reverb(x, SR, rng, (0.5, 0.5))
    assert wet.shape == x.shape and not np.allclose(wet, x)
    loud = augment.loudness(x, rng, (-20.0, -20.0))
    assert 20 * np.log10(augment.rms(loud)) == pytest.approx(-20.0, abs=0.01)
    g = augment.gain(x, rng, 6.0)
    assert 10 ** (-6 / 20) - 1e-6 <= augment.rms(g) / augment.rms(x) <= 10 ** (6 / 20) + 1e-6
    for colour in ("white", "pink", "brown"):
        n = augment.coloured_noise(SR, rng, colour)
        assert augment.rms(n) == pytest.approx(1.0)
    pink = augment.coloured_noise(SR, np.random.default_rng(1), "pink")
    assert _band_energy(pink, SR, 20, 200) > _band_energy(pink, SR, 4000, 4180)


def test_channel_augment_off_is_identity_and_on_is_seeded():
    x = chirp(200, 3000, 0.5, SR)
    off = augment.ChannelAugment(augment.AugmentConfig.off())
    np.testing.assert_array_equal(off(x, SR, np.random.default_rng(0)), x)
    everything = augment.ChannelAugment(augment.AugmentConfig(loudness=1, band_limit=1, codec=1, noise=1, reverb=1))
    a = everything(x, SR, np.random.default_rng(7))
    b = everything(x, SR, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and np.isfinite(a).all() and not np.allclose(a, x, atol=1e-3)


# --------------------------------------------------------------------------- manifest mistakes

def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name == "trainer.datasets"]


def test_manifest_synonym_columns_are_read(library, tmp_path, caplog):
    m = tmp_path / "m.csv"
    m.write_text(f"file,description,labels\n{library / 'sounds/beep.wav'},A beep.,beep;electronic\n")
    [item] = read_manifest(m)
    assert item.captions == ["A beep."] and item.tags == ["beep", "electronic"]
    assert _warnings(caplog) == []
    m.write_text(f"audio,captions,label\n{library / 'sounds/beep.wav'},A beep.|A tone,beep\n")
    [item] = read_manifest(m)
    assert item.captions == ["A beep.", "A tone"] and item.tags == ["beep"]


def test_unused_columns_are_one_warning_naming_the_file(library, tmp_path, caplog):
    m = tmp_path / "mine.csv"
    rows = "".join(f"{library / 'sounds/beep.wav'},beep {n},note {n},\n" for n in range(5))
    m.write_text("audio,caption,notes,empty\n" + rows)
    items = read_manifest(m)
    assert [i.captions for i in items] == [[f"beep {n}"] for n in range(5)]
    [warning] = _warnings(caplog)                 # one per manifest, not one per row
    assert warning == (f"{m}: column 'notes' is not used (soundsift reads audio/path/file/file_name/filename "
                       "(the audio), captions/caption/text/description/caption_<n> (captions), "
                       "tags/tag/labels/label (tags), source)")     # 'empty' holds nothing: not named


def test_tags_with_commas_stay_one_tag_and_are_said_once(library, tmp_path, caplog):
    m = tmp_path / "m.csv"
    beep = library / "sounds/beep.wav"
    m.write_text(f'audio,caption,tags\n{beep},x,"footsteps, recording"\n{beep},y,"a, b, c"\n{beep},z,d;e\n')
    items = read_manifest(m)
    assert items[0].tags == ["footsteps, recording"] and items[2].tags == ["d", "e"]
    assert _warnings(caplog) == [
        f"{m}: tags are separated by ';' — 'footsteps, recording' (line 2) is one tag; write "
        "'footsteps; recording' for 2 tags (1 more row has commas but no ';' in its tags)"]


def test_cells_written_as_lists_are_read_as_lists(library, tmp_path, caplog):
    m = tmp_path / "m.csv"
    beep = library / "sounds/beep.wav"
    m.write_text(f'audio,captions,tags\n{beep},"[""A beep."", ""A tone""]","[""beep"", ""Domestic animals, pets""]"\n'
                 f"{beep},A beep.,\"['beep', 'tone']\"\n")          # JSON, and pandas' to_csv of a list
    items = read_manifest(m)
    assert items[0].captions == ["A beep.", "A tone"] and items[0].tags == ["beep", "Domestic animals, pets"]
    assert items[1].tags == ["beep", "tone"]
    assert _warnings(caplog) == []


def test_list_like_cell_that_is_not_a_list_is_said(library, tmp_path, caplog):
    m = tmp_path / "m.csv"
    m.write_text(f'audio,caption,tags,mood\n{library / "sounds/beep.wav"},x,"[beep, tone]",calm\n')
    assert read_manifest(m)[0].tags == ["[beep, tone]"]
    [warning] = _warnings(caplog)
    assert warning.startswith(f"{m}: 2 things to check:\n  - column 'mood' is not used")
    assert ("\n  - the tags cell '[beep, tone]' (line 2) looks like a list but is not a JSON list of strings, "
            "so it is read as text; quote each item: [\"a\", \"b\"]") in warning


def test_soundsift_own_manifests_read_without_warnings(tmp_path, caplog):
    from trainer.caption_loop import CaptionedFile, TagScore
    from trainer.corpus.clips import Candidate
    from trainer.corpus.writer import WrittenClip, manifest_row
    corpus_row = manifest_row(Candidate("esc50", "x.wav", "dog bark", ("Domestic animals, pets",), ("A dog barks.",)),
                              WrittenClip("audio/a.flac", 1.0, 16000, 1), "train")
    caption_row = CaptionedFile("/abs/b.wav", [TagScore("Speech", 0.9, "yamnet")], ["Someone speaks."]).manifest_row()
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps(corpus_row) + "\n" + json.dumps(caption_row) + "\n")
    corpus_item, caption_item = read_manifest(m)
    assert corpus_item.tags == ["dog bark", "Domestic animals, pets"]    # 'label' is its first tag already
    assert corpus_item.captions == corpus_row["captions"] and corpus_item.source == "esc50"
    assert caption_item.tags == ["Speech"] and caption_item.captions == ["Someone speaks."]
    assert _warnings(caplog) == []


def test_csv_header_spaces_byte_order_mark_blank_and_overfull_rows(library, tmp_path):
    m = tmp_path / "m.csv"
    beep = library / "sounds/beep.wav"
    m.write_text(f"\ufeffaudio, caption\n,\n{beep},A beep\n", encoding="utf-8")
    [item] = read_manifest(m)
    assert item.captions == ["A beep"]
    m.write_text(f"audio,caption,tags\n{beep},a dog, barking,dog\n")
    with pytest.raises(InvalidDataset, match=r"m\.csv:2: 4 fields where the header has 3; quote cells"):
        read_manifest(m)


def test_no_captions_error_names_the_columns_not_read(library, tmp_path):
    m = tmp_path / "m.csv"
    m.write_text(f"audio,desc\n{library / 'sounds/beep.wav'},a beep\n")
    with pytest.raises(InvalidDataset, match=r"m\.csv:2: .*neither captions nor tags.*its 'desc' is not read"):
        read_manifest(m)


def test_other_formats_read_as_before_without_warnings(tmp_path, caplog):
    write(tmp_path / "lib" / "dog_bark" / "1.wav", tone(300, 0.2, SR), SR)
    assert [(i.captions, i.tags) for i in read_items("folders", tmp_path / "lib")] == [([], ["dog bark"])]
    (tmp_path / "clotho.csv").write_text("file_name,caption_1,caption_2\n1.wav,a|b,\"c, d\"\n")
    [c] = read_items("clotho", tmp_path / "clotho.csv", audio_dir=tmp_path / "lib" / "dog_bark")
    assert c.captions == ["a|b", "c, d"] and c.tags == []
    buf = io.BytesIO()
    sf.write(buf, tone(440, 0.2, SR), SR, format="WAV")
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        for name, data in (("k.wav", buf.getvalue()),
                           ("k.json", json.dumps({"text": "a|b", "tags": "x, y", "extra": 1}).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    [w] = read_items("webdataset", tmp_path / "s.tar")
    assert w.captions == ["a|b"] and w.tags == ["x, y"]
    assert _warnings(caplog) == []
