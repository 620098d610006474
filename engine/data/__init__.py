"""Data files shipped with the engine (the default zero-shot vocabulary)."""
