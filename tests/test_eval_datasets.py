"""Evaluation CSV formats: Clotho, AudioCaps, manifest, ESC-50, UrbanSound8K, generic."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import tone, write
from engine.errors import InvalidDataset
from trainer.evaluation.datasets import label_text, load_classification, load_retrieval

SR = 8000


def wav(path: Path) -> Path:
    return write(path, tone(440, 0.1, SR), SR)


def csv_file(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- retrieval
def test_clotho(tmp_path):
    audio = tmp_path / "audio"
    wav(audio / "a b.wav"); wav(audio / "c.wav")
    csv = csv_file(tmp_path / "clotho_captions_evaluation.csv", """
file_name,caption_1,caption_2,caption_3,caption_4,caption_5
a b.wav,one a,two a,"three, a",four a,five a
c.wav,one c,two c,three c,four c,five c
""")
    ds = load_retrieval(csv, audio)
    assert ds.format == "clotho"
    assert ds.audio_paths == [audio / "a b.wav", audio / "c.wav"]
    assert ds.captions[:3] == ["one a", "two a", "three, a"] and len(ds.captions) == 10
    assert ds.caption_audio == [0] * 5 + [1] * 5


def test_audiocaps_groups_rows_and_matches_files(tmp_path):
    audio = tmp_path / "audio"
    wav(audio / "abc_30.wav")           # <youtube_id>_<start_time>
    wav(audio / "sub" / "Ydef.flac")    # Y<youtube_id>, in a subfolder
    wav(audio / "103.wav")              # <audiocap_id>
    csv = csv_file(tmp_path / "test.csv", """
audiocap_id,youtube_id,start_time,caption
101,abc,30,a dog barks
102,def,0,rain falls
106,abc,30,a dog is barking
103,ghi,10.0,a car passes
""")
    ds = load_retrieval(csv, audio)
    assert ds.format == "audiocaps"
    assert ds.audio_paths == [audio / "abc_30.wav", audio / "sub" / "Ydef.flac", audio / "103.wav"]
    assert ds.captions == ["a dog barks", "a dog is barking", "rain falls", "a car passes"]
    assert ds.caption_audio == [0, 0, 1, 2]


def test_audiocaps_start_time_written_as_float(tmp_path):
    audio = tmp_path / "audio"
    wav(audio / "xyz_40.wav")
    csv = csv_file(tmp_path / "a.csv", "audiocap_id,youtube_id,start_time,caption\n1,xyz,40.0,wind\n")
    assert load_retrieval(csv, audio).audio_paths == [audio / "xyz_40.wav"]


def test_manifest_csv_and_jsonl_several_rows_per_audio(tmp_path):
    wav(tmp_path / "x.wav"); wav(tmp_path / "d" / "y.wav")
    absolute = wav(tmp_path / "elsewhere" / "z.wav")
    csv = csv_file(tmp_path / "m.csv", f"""
audio,caption
x.wav,first x
d/y.wav,only y
x.wav,second x
{absolute},abs z
""")
    ds = load_retrieval(csv)                       # audio_dir defaults to the CSV's folder
    assert ds.format == "manifest"
    assert ds.audio_paths == [tmp_path / "x.wav", tmp_path / "d" / "y.wav", absolute]
    assert ds.caption_audio == [0, 1, 0, 2]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("\n".join(json.dumps({"audio": a, "caption": c}) for a, c in
                               [("x.wav", "one"), ("d/y.wav", "two"), ("x.wav", "three")]) + "\n")
    ds = load_retrieval(jsonl, tmp_path)
    assert ds.captions == ["one", "two", "three"] and ds.caption_audio == [0, 1, 0]


def test_missing_audio_names_the_row(tmp_path):
    wav(tmp_path / "a.wav")
    csv = csv_file(tmp_path / "c.csv", """
file_name,caption_1
a.wav,fine
gone.wav,lost
also_gone.wav,lost too
""")
    with pytest.raises(InvalidDataset) as e:
        load_retrieval(csv, tmp_path)
    msg = str(e.value)
    assert "line 3" in msg and "'gone.wav'" in msg and "1 more" in msg and "--audio-dir" in msg


def test_audiocaps_missing_clip_names_row(tmp_path):
    csv = csv_file(tmp_path / "a.csv", "audiocap_id,youtube_id,start_time,caption\n7,nope,30,x\n")
    with pytest.raises(InvalidDataset, match=r"line 2: .*youtube_id 'nope'"):
        load_retrieval(csv, tmp_path)


@pytest.mark.parametrize("text, pattern", [
    ("name,text\na.wav,x\n", r"unrecognised header"),
    ("file_name,caption_1\na.wav,x,extra\n", r"line 2: 3 fields where the header has 2"),
    ("file_name,caption_1\na.wav,\n", r"line 2: empty 'caption_1'"),
    ("file_name,caption_1\n", r"no data rows"),
    ("", r"empty file"),
])
def test_malformed_retrieval_csv(tmp_path, text, pattern):
    wav(tmp_path / "a.wav")
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises(InvalidDataset, match=pattern):
        load_retrieval(csv, tmp_path)


def test_missing_csv_and_audio_dir(tmp_path):
    with pytest.raises(InvalidDataset, match="no such file"):
        load_retrieval(tmp_path / "none.csv", tmp_path)
    csv = csv_file(tmp_path / "c.csv", "audio,caption\na.wav,x\n")
    with pytest.raises(InvalidDataset, match="audio folder does not exist"):
        load_retrieval(csv, tmp_path / "nowhere")


def test_bad_jsonl_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"audio": "a.wav", "caption": "x"}\n{broken\n')
    with pytest.raises(InvalidDataset, match=r"m\.jsonl:2: not valid JSON"):
        load_retrieval(p, tmp_path)


# --------------------------------------------------------------------------- zero-shot
def test_esc50(tmp_path):
    audio = tmp_path / "audio"
    for name in ("1-100-A-0.wav", "1-200-A-10.wav", "2-300-A-0.wav"):
        wav(audio / name)
    csv = csv_file(tmp_path / "esc50.csv", """
filename,fold,target,category,esc10,src_file,take
1-100-A-0.wav,1,0,dog,True,100,A
1-200-A-10.wav,1,10,rain,True,200,A
2-300-A-0.wav,2,0,dog,True,300,A
""")
    ds = load_classification(csv, audio)
    assert ds.format == "esc50"
    assert ds.labels == ["dog", "rain"]          # ordered by target id
    assert ds.targets == [0, 1, 0] and ds.folds == ["1", "1", "2"]
    assert ds.audio_paths[1] == audio / "1-200-A-10.wav"


def test_urbansound8k_fold_subfolders_and_underscores(tmp_path):
    audio = tmp_path / "audio"
    wav(audio / "fold1" / "100032-3-0-0.wav")
    wav(audio / "fold2" / "100263-2-0-117.wav")
    csv = csv_file(tmp_path / "UrbanSound8K.csv", """
slice_file_name,fsID,start,end,salience,fold,classID,class
100032-3-0-0.wav,100032,0.0,0.317551,1,1,3,dog_bark
100263-2-0-117.wav,100263,58.5,62.5,1,2,2,children_playing
""")
    ds = load_classification(csv, audio)
    assert ds.format == "urbansound8k"
    assert ds.labels == ["children playing", "dog bark"]
    assert ds.targets == [1, 0] and ds.folds == ["1", "2"]
    assert ds.audio_paths[0] == audio / "fold1" / "100032-3-0-0.wav"


def test_generic_labels_sorted_with_optional_fold(tmp_path):
    for n in "abc":
        wav(tmp_path / f"{n}.wav")
    csv = csv_file(tmp_path / "l.csv", "audio,label\na.wav,water_drip\nb.wav,bird\nc.wav,water drip\n")
    ds = load_classification(csv)
    assert ds.format == "generic" and ds.folds is None
    assert ds.labels == ["bird", "water drip"] and ds.targets == [1, 0, 1]
    csv2 = csv_file(tmp_path / "f.csv", "audio,label,fold\na.wav,x,A\nb.wav,y,B\n")
    assert load_classification(csv2).folds == ["A", "B"]


def test_classification_errors_name_the_row(tmp_path):
    wav(tmp_path / "a.wav")
    missing = csv_file(tmp_path / "m.csv", "filename,fold,target,category\na.wav,1,0,dog\nb.wav,1,1,cat\n")
    with pytest.raises(InvalidDataset, match=r"line 3: audio file 'b.wav' not found"):
        load_classification(missing, tmp_path)
    clash = csv_file(tmp_path / "c.csv", "filename,fold,target,category\na.wav,1,0,dog\na.wav,1,0,cat\n")
    with pytest.raises(InvalidDataset, match=r"line 3: target 0 is 'cat'"):
        load_classification(clash, tmp_path)
    bad_fold = csv_file(tmp_path / "f.csv", "filename,fold,target,category\na.wav,one,0,dog\n")
    with pytest.raises(InvalidDataset, match=r"line 2: 'fold' should be a number"):
        load_classification(bad_fold, tmp_path)
    unknown = csv_file(tmp_path / "u.csv", "file,cls\na.wav,dog\n")
    with pytest.raises(InvalidDataset, match="unrecognised header"):
        load_classification(unknown, tmp_path)


def test_label_text():
    assert label_text("  dog_bark ") == "dog bark"
    assert label_text("crackling__fire") == "crackling fire"


# --------------------------------------------------------------------------- training manifests
def test_manifest_is_read_as_the_trainer_reads_it(tmp_path):
    from trainer.datasets import read_manifest
    for n in range(10):
        wav(tmp_path / f"{n}.wav")
    csv = csv_file(tmp_path / "finetune.csv", "audio,caption,tags\n" + "".join(
        f"{n}.wav,footsteps {n}|the sound of footsteps {n},steps\n" for n in range(10)))
    ds = load_retrieval(csv)
    assert ds.format == "manifest" and len(ds.audio_paths) == 10 and len(ds.captions) == 20
    assert ds.captions[:2] == ["footsteps 0", "the sound of footsteps 0"] and ds.caption_audio[:4] == [0, 0, 1, 1]
    items = read_manifest(csv)
    assert ds.captions == [c for i in items for c in i.captions]
    assert ds.audio_paths == [Path(i.audio) for i in items]


def test_caption_and_corpus_manifests_jsonl(tmp_path):
    from trainer.caption_loop import CaptionedFile, TagScore
    from trainer.corpus.clips import Candidate
    from trainer.corpus.writer import WrittenClip, manifest_row
    wav(tmp_path / "audio" / "a.flac"); b = wav(tmp_path / "b.wav")
    rows = [manifest_row(Candidate("esc50", "x.wav", "dog", (), ("A dog barks.",)),
                         WrittenClip("audio/a.flac", 0.1, SR, 1), "test"),
            CaptionedFile(str(b), [TagScore("Speech", 0.9, "yamnet")], ["Speech.", "Someone speaks."]).manifest_row(),
            {"audio": "b.wav", "tags": "rain; wind"}]             # tags only: training's caption for them
    m = tmp_path / "blat.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = load_retrieval(m)
    assert ds.audio_paths == [tmp_path / "audio" / "a.flac", b]
    assert ds.captions == rows[0]["captions"] + ["Speech.", "Someone speaks.", "This is a sound of rain and wind."]
    assert ds.caption_audio == [0] * len(rows[0]["captions"]) + [1, 1, 1]


def test_manifest_synonyms_tsv_and_missing_audio(tmp_path):
    wav(tmp_path / "a.wav")
    tsv = tmp_path / "m.tsv"
    tsv.write_text("file\tdescription\na.wav\tA tone\n")
    ds = load_retrieval(tsv)
    assert ds.captions == ["A tone"] and ds.audio_paths == [tmp_path / "a.wav"]
    csv = csv_file(tmp_path / "m.csv", "audio,captions\na.wav,x\n\ngone.wav,y|z\nalso.wav,w\n")
    with pytest.raises(InvalidDataset) as e:
        load_retrieval(csv, tmp_path)
    assert "line 4: audio file 'gone.wav' not found" in str(e.value) and "1 more" in str(e.value)
