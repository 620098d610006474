"""What names the aisfx branch in a model's config and fingerprint, importable without torch
(engine.towers.aisfx, the network, imports torch): a text-only command fingerprints a model
that has the branch without loading it."""
from __future__ import annotations

SAMPLE_RATE = 44100
FRONTEND_VERSION = "aisfx-frontend-1"
#: a model folder's int8 copy of its aisfx CNN (config ``aisfx_int8``; trainer/quantize_aisfx.py)
INT8_FILE = "aisfx_int8.onnx"
