"""The researcher's side audited (helper-117): training configs, a stopped run's continuation,
evaluation of one's own manifests, one-class zero-shot sets and corpus audits."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.errors import InvalidConfig, InvalidDataset
from tests.conftest import noise, tone, write
from tests.eval_fakes import CountingModel
from trainer.config import load_config
from ui.cli import app

SR = 16000
TOY = Path(__file__).resolve().parents[1] / "trainer" / "configs" / "toy.json"


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


# --------------------------------------------------------------------------- train
@pytest.mark.parametrize("text, reason", [
    ('{"steps": 3, "bogus": 1, "data": {"toy": {}}}', "unknown key"),
    ('{"steps": "many", "data": {"toy": {}}}', "config.steps: expected int"),
    ('{"steps": 0, "data": {"toy": {}}}', "config.steps must be at least 1"),
])
def test_a_bad_config_value_names_the_config_file(tmp_path, text, reason):
    path = tmp_path / "mine.json"
    path.write_text(text)
    with pytest.raises(InvalidConfig) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: ") and reason in str(e.value)


def test_a_stopped_run_says_a_continuation_that_keeps_its_steps(tmp_path, monkeypatch):
    """``--steps 12 --max-steps 3`` stopped at step 3: continuing without ``--steps`` would resume
    with the config's 20 steps, another schedule; the printed command keeps it, on one line."""
    import trainer.train as train_module
    from trainer.loop import TrainResult

    out = tmp_path / "a-rather-long-folder-name-for-the-run-that-stops-early"
    seen = {}

    def stopped(cfg, **kw):
        seen["steps"] = cfg.steps
        return TrainResult(out_dir=out, model_dir=out / "model", steps=3, seconds=0.1, interrupted=True)
    monkeypatch.setattr(train_module, "run_training", stopped)
    result = _invoke("train", str(TOY), "--out", str(out), "--steps", "12", "--max-steps", "3", "--no-progress")
    assert result.exit_code == 130, result.stderr
    assert seen["steps"] == 12
    line = f"continue with: soundsift train {TOY} --resume --out {out} --steps 12"
    assert line in result.stderr.splitlines()[-1], result.stderr
    as_json = _invoke("train", str(TOY), "--out", str(out), "--steps", "12", "--max-steps", "3", "--json")
    assert as_json.exit_code == 130 and json.loads(as_json.stdout)["steps"] == 3
    assert line in as_json.stderr, as_json.stderr        # --json kept the way on stderr too


# --------------------------------------------------------------------------- eval
def _sounds(root: Path) -> list[tuple[str, str]]:
    rows = []
    for k in range(2):
        rows.append((f"audio/tone{k}.wav", "tone"))
        write(root / "audio" / f"tone{k}.wav", tone(300 + 200 * k, 0.5, SR), SR)
        rows.append((f"audio/noise{k}.wav", "noise"))
        write(root / "audio" / f"noise{k}.wav", noise(0.5, SR, seed=k), SR)
    return rows


def test_eval_reads_a_manifest_from_its_own_folder_without_audio_dir(tmp_path, tiny_clap_dir):
    """README: a training manifest is read as ``soundsift train`` reads it, paths from its folder."""
    root = tmp_path / "mine"
    rows = _sounds(root)
    manifest = root / "my_captions.csv"
    manifest.write_text("audio,caption\n" + "".join(f"{a},a {label} sound\n" for a, label in rows))
    labels = root / "labels.csv"
    labels.write_text("audio,label\n" + "".join(f"{a},{label}\n" for a, label in rows))
    common = ("--model", str(tiny_clap_dir), "--json", "--no-cache", "--no-progress")
    got = _invoke("eval", "retrieval", str(manifest), *common)
    assert got.exit_code == 0, got.stderr
    assert json.loads(got.stdout)["n_audio"] == 4
    got = _invoke("eval", "zeroshot", str(labels), *common)
    assert got.exit_code == 0, got.stderr
    assert json.loads(got.stdout)["n"] == 4


def test_zero_shot_on_one_class_is_refused_not_scored_100_percent(tmp_path):
    from trainer.evaluation.runner import evaluate_zeroshot

    rows = [(a, label) for a, label in _sounds(tmp_path) if label == "tone"]
    csv = tmp_path / "one.csv"
    csv.write_text("audio,label\n" + "".join(f"{a},{label}\n" for a, label in rows))
    model = CountingModel()
    with pytest.raises(InvalidDataset, match=r"one\.csv: every clip is labelled 'tone'.*at least 2 classes"):
        evaluate_zeroshot(csv, None, model, use_cache=False, progress=False)
    assert model.audio_calls == 0          # refused before any audio is embedded


# --------------------------------------------------------------------------- corpus audit
def _corpus(tmp_path: Path, labels: tuple[str, ...], per_group: int) -> Path:
    manifest = tmp_path / "corpus.jsonl"
    with manifest.open("w") as f:
        for label in labels:
            for k in range(per_group):
                name = f"{label}{k}.wav"
                wave = tone(300 + 100 * k, 0.5, SR) if label == "tone" else noise(0.5, SR, seed=k)
                write(tmp_path / name, wave, SR)
                f.write(json.dumps({"audio": name, "tags": [label], "source": "synth"}) + "\n")
    return manifest


def test_corpus_audit_of_one_label_without_vocabulary_is_refused(tmp_path):
    from trainer.corpus.audit import audit_manifest

    manifest = _corpus(tmp_path, ("tone",), 3)
    with pytest.raises(InvalidDataset, match=r"corpus\.jsonl: every clip is labelled 'tone'.*--with-vocabulary"):
        audit_manifest(manifest, CountingModel(), progress=False)
    report = audit_manifest(manifest, CountingModel(), extra_labels=["white noise", "siren"], progress=False)
    assert report.labels == 1 and report.extra_labels == 2 and report.groups


def test_corpus_audit_says_when_no_group_is_big_enough(tmp_path, tiny_clap_dir):
    manifest = _corpus(tmp_path, ("tone", "noise"), 2)
    got = _invoke("corpus", "audit", str(manifest), "-m", str(tiny_clap_dir), "--no-progress")
    assert got.exit_code == 0, got.stderr
    assert "no (source, label) group has 3 clips or more" in got.stderr and "--min-clips" in got.stderr
    got = _invoke("corpus", "audit", str(manifest), "-m", str(tiny_clap_dir), "--min-clips", "2", "--no-progress")
    assert "no (source, label) group" not in got.stderr and "| synth | tone |" in got.stdout


@pytest.mark.parametrize("rows, reason", [
    ("audio/tone0.wav,a tone\naudio/tone0.wav,a dog barking\n", r"one audio clip \(tone0\.wav\).*at least 2 clips"),
    ("audio/tone0.wav,a tone\naudio/noise1.wav,A  tone \n", r"every clip is captioned 'a tone'.*2 different captions"),
])
def test_retrieval_where_every_clip_answers_every_query_is_refused(tmp_path, rows, reason):
    """One clip, or one caption text every clip shares: 100 % whatever the model, so refused."""
    from trainer.evaluation.runner import evaluate_retrieval

    _sounds(tmp_path)
    csv = tmp_path / "mine.csv"
    csv.write_text("audio,caption\n" + rows)
    model = CountingModel()
    with pytest.raises(InvalidDataset, match=r"mine\.csv: " + reason):
        evaluate_retrieval(csv, None, model, use_cache=False, progress=False)
    assert model.audio_calls == 0


def test_clotho_captions_alike_across_clips_are_still_scored(tmp_path):
    """Clotho's rule: a caption's one right answer is its own clip, so a shared text is no shortcut."""
    from trainer.evaluation.runner import evaluate_retrieval

    _sounds(tmp_path)
    csv = tmp_path / "clotho.csv"
    csv.write_text("file_name,caption_1\naudio/tone0.wav,a tone\naudio/noise1.wav,a tone\n")
    got = evaluate_retrieval(csv, None, CountingModel(), use_cache=False, progress=False)
    assert got["n_audio"] == 2 and got["t2a"]["R@1"] == 0.5      # tied captions: one of the two ranks 2nd


# --------------------------------------------------------------------------- corpus build
@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_corpus_build_says_when_every_source_is_held_out(tmp_path, caplog):
    """``--sources tones --val-sources tones`` builds an empty train.jsonl: said, not left to train."""
    from trainer.corpus.runner import build_corpus

    with caplog.at_level(logging.WARNING, logger="trainer.corpus.runner"):
        s = build_corpus(tmp_path / "c", ["tones"], val_sources=["tones"], synth_per_label=1,
                         max_per_label=2, val_max_per_label=2, min_val=1)
    assert s.train == 0 and s.val > 0
    assert "training split is empty: every source built (tones) is held out" in caplog.text


# --------------------------------------------------------------------------- resume
def test_a_resumed_run_says_the_steps_it_took_not_the_whole_run(tmp_path, monkeypatch):
    """``fit`` says where it began; ``train`` printed "trained 6 steps in 0.4 s" for a run that
    resumed at step 3 (its seconds are of 3 steps) and "trained 6 steps" when nothing was left."""
    import torch

    import trainer.train as train_module
    from tests.test_train_loop import TinyClap, datasets, kinds_items, make_cfg
    from trainer.loop import fit

    torch.set_num_threads(1)
    train, _ = datasets(kinds_items(tmp_path / "sounds", 2))
    cfg = make_cfg(tmp_path, steps=4, checkpoint_every=0)
    stopped = fit(TinyClap(), train, cfg, max_steps=2)
    assert stopped.resumed_at == 0 and stopped.steps == 2
    resumed = fit(TinyClap(), train, cfg, resume=True)
    assert resumed.resumed_at == 2 and resumed.steps == 4 and len(resumed.losses) == 2

    printed = []
    for result in (resumed, fit(TinyClap(), train, cfg, resume=True)):
        monkeypatch.setattr(train_module, "run_training", lambda cfg, result=result, **kw: result)
        got = _invoke("train", str(TOY), "--out", str(tmp_path / "run"), "--resume", "--no-progress")
        assert got.exit_code == 0, got.stderr
        printed.append(" ".join(got.stdout.split()))
    assert "trained steps 3–4 (resumed at step 2; 2 steps in " in printed[0]
    assert "nothing left to train: the run had reached its step 4 → model in" in printed[1]


# --------------------------------------------------------------------------- validation
def test_validation_zero_shot_reads_tags_differing_in_case_as_one_class(tmp_path):
    """"Hum" and "hum" were two classes whose prompts tie, so both ranked pessimistically; the
    evaluator reads them as one class, and so does the trainer's validation now."""
    import torch

    from tests.test_train_loop import SR as LOOP_SR
    from tests.test_train_loop import TinyClap
    from trainer.datasets import AudioTextDataset, Item
    from trainer.loop import validate

    torch.manual_seed(0)
    items, lowered = [], []
    for i in range(4):
        for label, wave in (("hum", tone(150 + 10 * i, 0.5, LOOP_SR)), ("hiss", noise(0.5, LOOP_SR, seed=i))):
            path = str(write(tmp_path / f"{label}{i}.wav", wave, LOOP_SR))
            spelled = label.capitalize() if i % 2 else label
            items.append(Item(path, [f"a {label}"], [spelled]))
            lowered.append(Item(path, [f"a {label}"], [label]))
    model = TinyClap()
    mixed = validate(model, AudioTextDataset(items, LOOP_SR, 0.5, train=False))["zeroshot"]
    plain = validate(model, AudioTextDataset(lowered, LOOP_SR, 0.5, train=False))["zeroshot"]
    assert mixed["classes"] == 2
    assert mixed == plain


# --------------------------------------------------------------------------- caption --index
def test_caption_says_one_file_not_in_the_index_in_the_singular(tmp_path, tiny_clap_dir, caplog):
    from indexer import build_index

    write(tmp_path / "lib" / "tone.wav", tone(440, 1.0, SR), SR)
    write(tmp_path / "new" / "hiss.wav", noise(1.0, SR, seed=3), SR)
    index = tmp_path / "idx"
    build_index([tmp_path / "lib"], index=index, model=tiny_clap_dir, workers=0, progress=False)
    with caplog.at_level(logging.WARNING, logger="trainer.caption_loop"):
        got = _invoke("caption", str(tmp_path / "new" / "hiss.wav"), "--out", str(tmp_path / "m.jsonl"),
                      "--index", str(index), "--source", "model", "--model", str(tiny_clap_dir),
                      "--labels", "tone,hiss", "--threshold", "0", "--json")
    assert got.exit_code == 0, got.stderr
    assert json.loads(got.stdout)["stored"]["not_in_index"] == 1
    said = caplog.text + got.stderr
    assert "1 captioned file is not in index" in said and "index it first to store its captions" in said


def test_corpus_audit_names_a_missing_manifest_before_loading_a_model(tmp_path):
    """The model loaded first: a missing manifest was said only after it (seconds for
    soundsift-base), and with a model that cannot load, never."""
    from typer.testing import CliRunner

    from ui.cli import app
    gone = tmp_path / "gone.jsonl"
    r = CliRunner().invoke(app, ["corpus", "audit", str(gone), "--model", str(tmp_path / "no_such_model")])
    assert r.exit_code == 1 and r.stderr.strip() == f"error: {gone}: no such file", r.output
