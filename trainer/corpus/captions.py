"""Keyword-to-caption for the corpus: several true phrasings per label.

Uses the trainer's keyword-to-caption templates (``trainer.captions.label_phrasings``) and
falls back to the minimal templates below where that module is absent. The manifest stores
these fixed captions; the trainer may add more at training time from the ``tags`` field.
Every caption here must stay literally true of the clip.
"""
from __future__ import annotations

#: phrasings every label gets; the bare label and "This is a sound of …" always come first
TEMPLATES = (
    "{label}",
    "This is a sound of {label}.",
    "the sound of {label}",
    "a recording of {label}",
    "{label} can be heard",
)


def label_captions(label: str, extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Captions for a clip labelled ``label`` (plus clip-specific ones), without duplicates."""
    label = label.strip()
    if not label:
        raise ValueError("a caption needs a non-empty label")
    try:
        from trainer.captions import label_phrasings
    except ImportError:  # the trainer's templates are optional here; ours cover the essentials
        phrasings = [t.format(label=label) for t in TEMPLATES]
    else:
        phrasings = label_phrasings(label)
    out = phrasings + [c for c in extra if c]
    return list(dict.fromkeys(out))


def speech_captions(language: str | None, *, synthetic: bool) -> list[str]:
    """Clip-specific captions of speech: only what is known (language, synthetic or not)."""
    if synthetic:
        out = ["synthetic speech", "a computer voice speaking", "text-to-speech voice"]
        if language:
            out += [f"synthetic speech in {language}", f"a computer voice speaking {language}"]
        return out
    out = ["a person speaking", "a human voice", "someone talking"]
    if language:
        out += [f"a person speaking {language}", f"speech in {language}"]
    return out
