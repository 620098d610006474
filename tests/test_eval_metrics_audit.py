"""Audit of the evaluator's figures against plain-loop references written from the published
definitions (LAION-CLAP ``evaluate_clotho_audiocaps``; DCASE 2022 task 6b ``eval_script.py``),
and of the inputs and reports of ``soundsift eval`` around them.

The references rank by sorting, item by item, with pessimistic ties (a relevant item after every
irrelevant one of the same score), unlike the code's counting (``metrics.relevant_ranks``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import tone, write
from engine.errors import InvalidDataset
from eval_fakes import CountingModel
from trainer.evaluation import metrics, report
from trainer.evaluation.datasets import load_classification, load_retrieval
from trainer.evaluation.embed import embed_audio_files, embed_texts
from trainer.evaluation.runner import evaluate_retrieval

SR = 16000


# --------------------------------------------------------------------------- references
def ref_ranks(scores: list[float], relevant: set[int]) -> list[int]:
    """1-based ranks of the relevant items, ascending: sorted by score (descending), at equal
    score irrelevant items first, then by index."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j in relevant, j))
    return sorted(pos + 1 for pos, j in enumerate(order) if j in relevant)


def ref_ap10(ranks: list[int]) -> float:
    """AP@10: Σ_{r_j ≤ 10} j / r_j over the sorted ranks, ÷ min(n, 10)."""
    total = 0.0
    for j, r in enumerate(sorted(ranks), start=1):
        if r <= 10:
            total += j / r
    return total / min(len(ranks), 10)


def ref_summary(per_query_ranks: list[list[int]]) -> dict[str, float]:
    best = [r[0] for r in per_query_ranks]
    n = len(best)
    out = {f"R@{k}": sum(1 for b in best if b <= k) / n for k in (1, 5, 10)}
    out["mAP@10"] = sum(ref_ap10(r) for r in per_query_ranks) / n
    zero_based = sorted(b - 1 for b in best)
    mid = (zero_based[(n - 1) // 2] + zero_based[n // 2]) / 2
    out["median_rank"] = math.floor(mid) + 1          # LAION: floor(median(rank - 1)) + 1
    out["mean_rank"] = sum(best) / n
    return out


def ref_paper_protocol(sim: np.ndarray, caption_audio: list[int]) -> dict[str, dict[str, float]]:
    """LAION/DCASE: each caption's one right answer is its own clip; an audio's right answers
    are its own captions (whatever other clips' captions say)."""
    n_audio, n_captions = sim.shape
    t2a = [ref_ranks([float(sim[a, c]) for a in range(n_audio)], {caption_audio[c]})
           for c in range(n_captions)]
    a2t = [ref_ranks([float(sim[a, c]) for c in range(n_captions)],
                     {c for c in range(n_captions) if caption_audio[c] == a}) for a in range(n_audio)]
    return {"t2a": ref_summary(t2a), "a2t": ref_summary(a2t)}


def laion_a2t_map10(sim: np.ndarray, per_audio: int) -> float:
    """LAION-CLAP's audio→text mAP@10 as its code computes it: the ranks (0-based) of the audio's
    captions *in caption order*, those < 10 paired with 1, 2, …, summed, ÷ 5."""
    n_audio = sim.shape[0]
    total = 0.0
    for a in range(n_audio):
        ranking = sorted(range(sim.shape[1]), key=lambda c: -sim[a, c])
        preds = [ranking.index(c) for c in range(a * per_audio, (a + 1) * per_audio)]
        kept = [p for p in preds if p < 10]
        total += sum((j + 1) / (p + 1) for j, p in enumerate(kept)) / per_audio
    return total / n_audio


def assert_figures(got: dict, want: dict) -> None:
    for direction in ("t2a", "a2t"):
        for key, value in want[direction].items():
            assert got[direction][key] == pytest.approx(value, abs=1e-12), (direction, key)


def clotho_like(seed: int, n_audio: int = 9, per_audio: int = 5, levels: int | None = None):
    """Random (n_audio, n_audio·per_audio) similarities, captions grouped per audio as LAION's."""
    rng = np.random.default_rng(seed)
    sim = rng.standard_normal((n_audio, n_audio * per_audio))
    if levels:                                     # coarse scores: many ties
        sim = np.round(sim * levels / 3) / levels
    return sim, [c // per_audio for c in range(n_audio * per_audio)]


# --------------------------------------------------------------------------- retrieval figures
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [None, 2])
def test_five_captions_per_clip_match_the_papers_definitions(seed, levels):
    sim, caption_audio = clotho_like(seed, levels=levels)
    got = {"t2a": metrics.t2a_metrics(sim, caption_audio), "a2t": metrics.a2t_metrics(sim, caption_audio)}
    assert_figures(got, ref_paper_protocol(sim, caption_audio))


@pytest.mark.parametrize("seed", range(6))
def test_t2a_map10_is_the_dcase_mean_reciprocal_rank_within_ten(seed):
    sim, caption_audio = clotho_like(seed, n_audio=14)
    ranks = metrics.ranks_t2a(sim, caption_audio)
    # DCASE eval_script.py: one correct file per caption; AP = 1/position within the top 10, else 0
    dcase = np.mean([1.0 / r if r <= 10 else 0.0 for r in ranks])
    assert metrics.t2a_metrics(sim, caption_audio)["mAP@10"] == pytest.approx(dcase)
    assert metrics.t2a_metrics(sim, caption_audio)["R@10"] == pytest.approx(np.mean(ranks <= 10))


@pytest.mark.parametrize("seed", range(6))
def test_a2t_map10_is_standard_ap_and_at_most_laions(seed):
    """Ours sorts the caption ranks (standard AP); LAION pairs them in caption order, which can only
    score higher (rearrangement inequality), equal when no score ties and the order agrees."""
    sim, caption_audio = clotho_like(seed, n_audio=6)
    ours = metrics.a2t_metrics(sim, caption_audio)["mAP@10"]
    assert ours <= laion_a2t_map10(sim, 5) + 1e-12
    # captions re-ordered so that each audio's come in rank order: the two definitions agree
    order = np.concatenate([a * 5 + np.argsort(-sim[a, a * 5:(a + 1) * 5]) for a in range(6)])
    assert metrics.a2t_metrics(sim[:, order], caption_audio)["mAP@10"] == pytest.approx(
        laion_a2t_map10(sim[:, order], 5))


def test_a2t_recall_counts_any_of_the_clips_captions():
    # audio 0's own captions 0-4 score below all five of audio 1's; audio 1's score top
    sim = np.zeros((2, 10))
    sim[0] = [0.1, 0.9, 0.2, 0.3, 0.4, 1.0, 0.95, 0.93, 0.92, 0.91]   # own captions 0-4
    sim[1] = [0.0] * 5 + [1.0, 0.9, 0.8, 0.7, 0.6]
    a2t = metrics.a2t_metrics(sim, [0] * 5 + [1] * 5)
    # audio 0: best own caption (0.9) ranks 6th; audio 1: 1st
    assert a2t["R@1"] == 0.5 and a2t["R@5"] == 0.5 and a2t["R@10"] == 1.0
    assert metrics.ranks_a2t(sim, [0] * 5 + [1] * 5)[0].tolist() == [6, 7, 8, 9, 10]


def test_duplicate_audio_ties_are_pessimistic_not_rank_one_for_both():
    """Two identical clips (a file copied twice): every caption of either ties them; its own
    clip ranks second, so neither clip's captions score R@1."""
    audio = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    text = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])        # caption c belongs to clip c
    got = metrics.retrieval_metrics(audio, text, [0, 1, 2])
    assert metrics.ranks_t2a(audio @ text.T, [0, 1, 2]).tolist() == [2, 2, 1]
    assert got["t2a"]["R@1"] == pytest.approx(1 / 3)
    assert got["t2a"]["mAP@10"] == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert got["a2t"]["R@1"] == pytest.approx(1 / 3)


def test_identical_captions_of_two_clips_tie_pessimistically_under_the_papers_rule():
    """Clotho/AudioCaps rule (no caption texts given): the identical caption of the other clip
    scores the same and ranks ahead of the clip's own."""
    sim = np.array([[0.9, 0.9, 0.1],        # clip 0: its caption 0 and clip 1's caption 1 alike
                    [0.5, 0.5, 0.2]])
    ranks = metrics.ranks_a2t(sim, [0, 1, 1])
    assert ranks[0].tolist() == [2]         # not 1: tied with an irrelevant caption
    assert ranks[1].tolist() == [2, 3]      # caption 1 ties caption 0 (irrelevant), ranks after it


def test_all_equal_scores_give_the_worst_figures():
    sim = np.zeros((4, 8))
    got = {"t2a": metrics.t2a_metrics(sim, [c // 2 for c in range(8)]),
           "a2t": metrics.a2t_metrics(sim, [c // 2 for c in range(8)])}
    assert got["t2a"]["R@1"] == 0.0 and got["t2a"]["median_rank"] == 4
    assert got["a2t"]["R@1"] == 0.0 and got["a2t"]["mean_rank"] == 7


# --------------------------------------------------------------------------- zero-shot figures
def test_zeroshot_top1_is_plain_accuracy_over_clips_not_class_balanced():
    # class 0: 3 clips, all right; class 1: 1 clip, wrong → plain 3/4, class-balanced 1/2
    logits = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    out = metrics.zeroshot_from_logits(logits, [0, 0, 0, 1], ["dog", "cat"])
    assert out["top1"] == pytest.approx(0.75)
    assert out["per_class"] == {"dog": 1.0, "cat": 0.0}
    # a tie between the true class and another is a miss (pessimistic), in top-1 and predictions
    tied = metrics.zeroshot_from_logits(np.array([[0.5, 0.5]]), [1], ["dog", "cat"])
    assert tied["top1"] == 0.0 and tied["top5"] == 1.0 and tied["mAP@10"] == 0.5


@pytest.mark.parametrize("seed", range(4))
def test_zeroshot_figures_match_plain_loops(seed):
    rng = np.random.default_rng(seed)
    logits = np.round(rng.standard_normal((30, 12)) * 2) / 2      # ties
    targets = rng.integers(0, 12, 30)
    out = metrics.zeroshot_from_logits(logits, targets, [f"c{i}" for i in range(12)])
    ranks = [ref_ranks(list(logits[n]), {int(targets[n])})[0] for n in range(30)]
    assert out["top1"] == pytest.approx(np.mean([r <= 1 for r in ranks]))
    assert out["top5"] == pytest.approx(np.mean([r <= 5 for r in ranks]))
    assert out["mAP@10"] == pytest.approx(np.mean([1 / r if r <= 10 else 0 for r in ranks]))


def test_generic_labels_merge_case_and_underscores_and_refuse_an_empty_name(tmp_path):
    for name in ("a.wav", "b.wav", "c.wav"):
        write(tmp_path / name, tone(440, 0.2, SR), SR)
    (tmp_path / "l.csv").write_text("audio,label\na.wav,Dog_bark\nb.wav,dog bark\nc.wav,cat\n")
    data = load_classification(tmp_path / "l.csv")
    assert data.labels == ["Dog bark", "cat"] and data.targets == [0, 0, 1]
    (tmp_path / "e.csv").write_text("audio,label\na.wav,dog\nb.wav,__\n")
    with pytest.raises(InvalidDataset, match=r"e\.csv: line 3: 'label' is '__', no class name"):
        load_classification(tmp_path / "e.csv")


# --------------------------------------------------------------------------- inputs
def test_bom_blank_lines_and_blank_lines_above_the_header(tmp_path):
    for name in ("a.wav", "b.wav"):
        write(tmp_path / name, tone(440, 0.2, SR), SR)
    text = "\r\n\r\naudio,label\r\n\r\na.wav,dog\r\n\r\nb.wav,cat\r\n\r\n"
    (tmp_path / "l.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    data = load_classification(tmp_path / "l.csv")
    assert data.labels == ["cat", "dog"] and data.targets == [1, 0]
    (tmp_path / "blank.csv").write_text("\n \n")
    with pytest.raises(InvalidDataset, match=r"blank\.csv: empty file"):
        load_classification(tmp_path / "blank.csv")


def test_missing_audio_is_one_error_naming_the_csv_line_and_count_before_any_model(tmp_path):
    write(tmp_path / "a.wav", tone(440, 0.2, SR), SR)
    (tmp_path / "c.csv").write_text("file_name,caption_1\na.wav,x\ngone.wav,y\nalso.wav,z\n")

    def no_model():
        raise AssertionError("a model was loaded before the CSV was checked")

    with pytest.raises(InvalidDataset, match=r"c\.csv: line 3: audio file 'gone\.wav' not found .*"
                                             r"\(and 1 more rows\)") as err:
        evaluate_retrieval(tmp_path / "c.csv", tmp_path, model=no_model, progress=False)
    assert str(err.value).count("\n") == 0


# --------------------------------------------------------------------------- end to end
def audiocaps_set(tmp_path):
    """Four clips; clips 0 and 1 share the caption text "an engine running" (as 71 texts of
    AudioCaps' test split are shared by several clips)."""
    captions = [["an engine running", "a low hum"], ["An engine  running", "a bell rings"],
                ["birds sing", "water drips"], ["a dog barks", "wind blows"]]
    rows = ["audiocap_id,youtube_id,start_time,caption"]
    for i, caps in enumerate(captions):
        write(tmp_path / "audio" / f"yt{i}_30.wav", tone(200 * 3 ** i, 0.5, SR), SR)
        rows += [f"{10 * i + j},yt{i},30,{c}" for j, c in enumerate(caps)]
    (tmp_path / "test.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "test.csv", tmp_path / "audio"


def test_audiocaps_captions_shared_by_clips_are_scored_as_the_papers_do(tmp_path):
    csv, audio_dir = audiocaps_set(tmp_path)
    model = CountingModel()
    got = evaluate_retrieval(csv, audio_dir, model, use_cache=False, progress=False,
                             report_dir=tmp_path / "r")
    data = load_retrieval(csv, audio_dir)
    assert data.format == "audiocaps"
    sim = (embed_audio_files(model, data.audio_paths, progress=False).astype(np.float64)
           @ embed_texts(model, data.captions, progress=False).astype(np.float64).T)
    want = ref_paper_protocol(sim, data.caption_audio)
    assert_figures(got, want)
    # the shared text's two captions: one of them has the other clip above its own
    assert got["t2a"]["mean_rank"] > metrics.t2a_metrics(sim, data.caption_audio, data.captions)["mean_rank"]
    assert "each caption's own clip is its one right answer" in (tmp_path / "r" / "report.md").read_text()


# --------------------------------------------------------------------------- reports
def zeroshot_result(labels):
    return {"model": "m", "n": 2, "top1": 0.5, "top5": 1.0, "top10": 1.0, "mAP@10": 0.75,
            "per_class": {labels[0]: 0.0, labels[1]: 1.0}}


def test_report_draws_class_names_with_dollar_signs_as_written(tmp_path):
    labels = [r"$\cash$ register", "dog"]          # matplotlib math mode would refuse \cash
    md = report.write_zeroshot_report(tmp_path / "r", zeroshot_result(labels),
                                      np.array([[0, 1], [0, 1]]), labels, "{label}")
    assert sorted(p.name for p in md.parent.iterdir()) == [
        "confusion_matrix.png", "per_class_accuracy.png", "report.md"]
    assert r"$\cash$ register" in md.read_text()


def test_a_class_name_with_a_bar_stays_one_table_cell(tmp_path):
    labels = ["on|off switch", "dog"]
    md = report.write_zeroshot_report(tmp_path / "r", zeroshot_result(labels),
                                      np.eye(2, dtype=int), labels, "{label}")
    row = next(line for line in md.read_text().splitlines() if "switch" in line)
    assert row == "| on\\|off switch | 0.00 % |"
    assert len(row.replace("\\|", "").strip("|").split("|")) == 2         # two cells, not three


def test_a_failing_plot_leaves_no_half_report(tmp_path, monkeypatch):
    out = tmp_path / "r"
    out.mkdir()
    (out / "report.md").write_text("earlier report")

    from matplotlib.figure import Figure
    draw = Figure.savefig
    calls = []

    def second_plot_fails(self, *args, **kwargs):   # the confusion matrix draws, the bars do not
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("plot failed")
        return draw(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", second_plot_fails)
    with pytest.raises(RuntimeError):
        report.write_zeroshot_report(out, zeroshot_result(["cat", "dog"]), np.eye(2, dtype=int),
                                     ["cat", "dog"], "{label}")
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]
    assert (out / "report.md").read_text() == "earlier report"
