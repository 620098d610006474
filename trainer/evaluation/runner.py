"""End-to-end evaluations: dataset CSV + audio folder + model → the figures (and a report).

The trainer reuses these for periodic validation; on precomputed embeddings use
:func:`trainer.evaluation.metrics.retrieval_metrics` / ``zeroshot_metrics`` directly.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InvalidDataset
from engine.models.base import AudioTextModel
from engine.outputs import output_folder
from engine.zeroshot import DEFAULT_TEMPLATE, LABEL_QUERY_TEMPLATE, class_prompts
from trainer.evaluation import metrics
from trainer.evaluation.cache import EmbeddingCache
from trainer.evaluation.datasets import RetrievalSet, load_classification, load_retrieval
from trainer.evaluation.embed import DEFAULT_BATCH_SIZE, embed_audio_files, embed_texts

log = logging.getLogger(__name__)

CURVE_MAX_K = 50


def _model(model: AudioTextModel | str | Path | None) -> AudioTextModel:
    if isinstance(model, AudioTextModel):
        return model
    from engine.models.factory import load_model
    return load_model(model)


def _embed_audio(model: AudioTextModel, paths, batch_size: int, cache_dir, use_cache: bool,
                 progress: bool) -> np.ndarray:
    if not use_cache:
        out = embed_audio_files(model, paths, batch_size=batch_size, progress=progress)
    else:
        with EmbeddingCache(cache_dir) as cache:
            out = embed_audio_files(model, paths, batch_size=batch_size, cache=cache, progress=progress)
    _warn_not_finite(out, [str(p) for p in paths], "clip", model)
    return out


def _warn_not_finite(vectors: np.ndarray, names: list[str], what: str, model: AudioTextModel) -> None:
    """Say so when the model gave NaN/Inf vectors (a diverged model): they rank last (metrics)."""
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        log.warning("%s: %d of %d %s embeddings are not finite (first: %s); they rank last", model.name,
                    bad.size, len(names), what, names[bad[0]])


def _say_if_trained_on(model: AudioTextModel, csv_path: str | Path) -> dict[str, Any]:
    """Warn (one line) when ``model``, or a model it started from, trained on ``csv_path``
    (:func:`trainer.trained_on.trained_on_this`); returns what the result then carries,
    ``"warning"`` and ``"trained_on_this"`` (nothing otherwise)."""
    from trainer.trained_on import trained_on_this
    found = trained_on_this(model, csv_path, model.name)
    if found is None:
        return {}
    log.warning("%s", found.message)
    return {"warning": found.message, "trained_on_this": found.as_json()}


def _note_shared_captions(data: RetrievalSet) -> None:
    """Log how many caption texts several clips share, and how they are scored."""
    clips: dict[str, set[int]] = {}
    for caption, a in zip(data.captions, data.caption_audio):
        clips.setdefault(metrics.caption_key(caption), set()).add(a)
    shared = [key for key, owners in clips.items() if len(owners) > 1]
    if not shared:
        return
    how = ("each caption's right answer is its own clip alone, as in LAION-CLAP and DCASE"
           if data.relevance_texts is None else "every clip with the text is a right answer")
    log.info("%s: %d caption texts are written for more than one clip (first: %r); %s",
             data.format, len(shared), shared[0], how)


def evaluate_retrieval(csv_path: str | Path, audio_dir: str | Path | None = None,
                       model: AudioTextModel | str | Path | None = None, *,
                       batch_size: int = DEFAULT_BATCH_SIZE, cache_dir: str | Path | None = None,
                       use_cache: bool = True, progress: bool = True,
                       report_dir: str | Path | None = None) -> dict[str, Any]:
    """Caption retrieval both ways by the LAION-CLAP protocol.

    Returns ``{"t2a": {...}, "a2t": {...}, "n_audio", "n_captions", "model"}`` with
    R@1/5/10 and mAP@10 as fractions and median/mean rank (1-based). With
    ``report_dir``, also writes ``report.md`` and ``recall_at_k.png`` there.
    """
    if report_dir is not None:
        output_folder(report_dir, "--report")
    data = load_retrieval(csv_path, audio_dir)     # check the CSV before loading a model
    _need_two_answers(csv_path, data)
    m = _model(model)
    trained_on = _say_if_trained_on(m, csv_path)
    log.info("retrieval: %d audio clips, %d captions (%s format)", len(data.audio_paths),
             len(data.captions), data.format)
    audio = _embed_audio(m, data.audio_paths, batch_size, cache_dir, use_cache, progress)
    text = embed_texts(m, data.captions, batch_size=batch_size, progress=progress)
    _warn_not_finite(text, data.captions, "caption", m)
    # Clotho/AudioCaps: a caption's own clip is its one right answer, as the papers score them;
    # a manifest: clips sharing a caption text are each a right answer (RetrievalSet.relevance_texts)
    texts = data.relevance_texts
    _note_shared_captions(data)
    figures = metrics.retrieval_metrics(audio, text, data.caption_audio, texts)
    result = {"t2a": figures["t2a"], "a2t": figures["a2t"], "n_audio": len(data.audio_paths),
              "n_captions": len(data.captions), "model": m.name, **trained_on}
    if report_dir is not None:
        from trainer.evaluation.report import write_retrieval_report
        sim = audio.astype(np.float64) @ text.astype(np.float64).T
        max_k = min(CURVE_MAX_K, len(data.audio_paths))
        curves = {
            "text → audio": metrics.recall_curve(
                metrics.ranks_t2a(sim, data.caption_audio, texts), max_k),
            "audio → text": metrics.recall_curve(
                np.array([r[0] for r in metrics.ranks_a2t(sim, data.caption_audio, texts)]),
                min(CURVE_MAX_K, len(data.captions))),
        }
        write_retrieval_report(report_dir, result, curves, source=str(csv_path),
                               shared_captions=texts is not None)
    return result


def evaluate_zeroshot(csv_path: str | Path, audio_dir: str | Path | None = None,
                      model: AudioTextModel | str | Path | None = None, *,
                      template: str = DEFAULT_TEMPLATE, query_template: str = LABEL_QUERY_TEMPLATE,
                      batch_size: int = DEFAULT_BATCH_SIZE,
                      cache_dir: str | Path | None = None, use_cache: bool = True,
                      progress: bool = True, report_dir: str | Path | None = None) -> dict[str, Any]:
    """Zero-shot classification (each clip against one prompt per class), and text→audio
    retrieval with each class's ``query_template`` (the bare label by default) as the query and
    every clip of the class relevant.

    Returns ``{"top1", "top5", "per_class": {label: acc}, "per_fold": {...}`` (only when
    the CSV has folds) ``, "n", "model", "t2a": {R@1, R@5, R@10, mAP@10, median_rank,
    mean_rank}, "t2a_queries"}``. With ``report_dir``, also writes ``report.md``,
    ``confusion_matrix.png`` and ``per_class_accuracy.png`` there.
    """
    if report_dir is not None:
        output_folder(report_dir, "--report")
    data = load_classification(csv_path, audio_dir)
    prompts = class_prompts(data.labels, template)
    queries = class_prompts(data.labels, query_template)
    _need_two_classes(csv_path, data.labels)
    m = _model(model)
    trained_on = _say_if_trained_on(m, csv_path)
    log.info("zero-shot: %d clips, %d classes (%s format)", len(data.audio_paths),
             len(data.labels), data.format)
    audio = _embed_audio(m, data.audio_paths, batch_size, cache_dir, use_cache, progress)
    same = queries == prompts                    # one text pass for the prompts and the queries
    both = embed_texts(m, prompts if same else prompts + queries, batch_size=batch_size, progress=progress)
    _warn_not_finite(both, prompts if same else prompts + queries, "prompt", m)
    text = both[:len(prompts)]
    query_text = text if same else both[len(prompts):]
    logits = audio.astype(np.float64) @ text.astype(np.float64).T
    result = metrics.zeroshot_from_logits(logits, data.targets, data.labels, data.folds)
    result["model"] = m.name
    result["t2a"] = metrics.label_t2a_metrics(audio, query_text, data.targets)
    result["t2a_queries"] = len(set(data.targets))
    result.update(trained_on)
    if report_dir is not None:
        from trainer.evaluation.report import write_zeroshot_report
        predicted = metrics.predictions(logits, data.targets)
        confusion = metrics.confusion_matrix(data.targets, predicted, len(data.labels))
        write_zeroshot_report(report_dir, result, confusion, data.labels, template, source=str(csv_path),
                              query_template=query_template)
    return result


def _need_two_answers(csv_path: str | Path, data: RetrievalSet) -> None:
    """Refuse a set where every clip answers every query (one clip, or one caption text that all
    clips share): each figure would be 100 % whatever the model."""
    if len(data.audio_paths) < 2:
        what = f"one audio clip ({data.audio_paths[0].name}), the right answer to every caption" \
            if data.audio_paths else "no audio clip"
        raise InvalidDataset(f"{csv_path}: {what}; retrieval needs at least 2 clips (with one, every "
                             "figure is 100 %)")
    texts = data.relevance_texts
    if texts is not None and len({metrics.caption_key(t) for t in texts}) < 2:
        raise InvalidDataset(f"{csv_path}: every clip is captioned {texts[0]!r}, so each is a right answer to "
                             "every query; retrieval needs at least 2 different captions (with one, every "
                             "figure is 100 %)")


def _need_two_classes(csv_path: str | Path, labels: list[str]) -> None:
    """Refuse a one-class set: its only class always ranks first, so every figure would be 100 %."""
    if len(labels) < 2:
        only = f"every clip is labelled {labels[0]!r}" if labels else "no clip has a label"
        raise InvalidDataset(f"{csv_path}: {only}; zero-shot ranks a clip's "
                             "class among the others, so it needs at least 2 classes (with one, every "
                             "figure is 100 %)")
