"""The offline training corpus recipe: real sounds from Debian data packages plus synthesis.

One module per stage or source family: ``debian`` (fetch + unpack), ``rcc`` (Qt resources),
``packages`` + ``recipes.toml`` (package sources and their label tables), ``labels`` (names →
labels), ``tones`` / ``speech`` / ``music`` (sox, espeak-ng, fluidsynth; ``music`` also renders the
``gm-effects`` source), ``signals`` (telephone tones, alarms, sirens), ``select`` (split by
source, per-label cap), ``writer`` (FLAC + manifest rows), ``runner`` (the build). Run it with
``python -m trainer.corpus build --out corpus/`` or ``soundsift corpus build``.
"""
