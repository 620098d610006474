"""Hugging Face CLAP backend: ``laion/*`` CLAP checkpoints or a local folder in their format.

Works with fused (``laion/clap-htsat-fused``) and unfused (``laion/clap-htsat-unfused``)
checkpoints and the ``laion/larger_clap_*`` ones; the checkpoint's own config says which. Audio
preprocessing equals transformers' ``ClapProcessor`` without its randomness (see
:mod:`engine.models.clap_features`); text goes through the checkpoint's own tokenizer, padded on
the right and cut at 77 tokens, the length LAION-CLAP trains and infers with (see
:data:`LAION_CLAP_TEXT_TOKENS`; ``$SOUNDSIFT_CLAP_TEXT_TOKENS`` or ``text_max_tokens`` sets
another). Weights run in float32, whatever dtype they are stored in.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from engine.errors import ModelUnavailable
from engine.models.base import AudioTextModel, l2_normalize

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.models.clap_features import ClapFeatures

log = logging.getLogger(__name__)

#: bump when preprocessing or pooling changes in a way that changes vectors
BACKEND_VERSION = "hf-clap/1"
#: bump when text encoding changes in a way that changes text vectors; it enters the text
#: fingerprint, so label vectors cached on disk (engine.zeroshot) with the earlier encoding are made
#: again (indexes hold audio vectors only: they stay). Up to session 32 no key said how text was
#: encoded: the tokenizer's own padding side and limit (512 for laion/*); 2: right padding, 77-token limit.
TEXT_PIPELINE_VERSION = "hf-clap-text/2"
#: tokens a text is cut at by default. LAION-CLAP, which trained every laion/* checkpoint, tokenizes
#: with RoBERTa to ``max_length=77`` in training (src/laion_clap/training/data.py, ``tokenizer``:
#: "max_length is default to 77 from the OpenAI CLIP parameters") and in its inference API
#: (src/laion_clap/hook.py, ``CLAP_Module.tokenizer``); the converted checkpoints keep roberta-base's
#: tokenizer, whose ``model_max_length`` (512) no CLAP training text ever reached.
LAION_CLAP_TEXT_TOKENS = 77
#: environment variable setting another limit (whole number, 3 to the checkpoint's own limit)
TEXT_TOKENS_ENV = "SOUNDSIFT_CLAP_TEXT_TOKENS"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def pick_device(device: "str | torch.device | None" = None) -> "torch.device":
    """The given device, else CUDA when available, else CPU."""
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _pooled(output: Any) -> "torch.Tensor":
    """get_*_features returns a tensor (transformers 4) or an output with pooler_output (5)."""
    return output if hasattr(output, "shape") else output.pooler_output


def weights_digest(model: "torch.nn.Module") -> str:
    """sha256 over the state dict (sorted names, dtypes, shapes and raw bytes)."""
    import torch

    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{key}|{t.dtype}|{tuple(tensor.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy())  # buffer protocol: no copy
    return h.hexdigest()


def _tokenizer_digest(tokenizer) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()


def _first_sentence(error: BaseException, limit: int = 200) -> str:
    """``Type: first sentence`` of an exception, on one line (the full text stays in __cause__)."""
    text = " ".join(str(error).split())
    cut = text.find(". ")
    text = (text[:cut] if cut > 0 else text).rstrip(".")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(error).__name__}: {text}"


def _check_tokenizer(tokenizer, config) -> None:
    """Refuse a tokenizer that cannot be this checkpoint's own.

    transformers 5 silently builds an empty RoBERTa tokenizer (special tokens only) when a
    folder has no tokenizer files; every text would then embed the same.
    """
    size, specials = len(tokenizer), len(set(tokenizer.all_special_tokens))
    if size <= specials:
        raise ValueError(f"the tokenizer has only its {specials} special tokens (tokenizer.json "
                         "or vocab.json + merges.txt missing?)")
    if size > int(config.text_config.vocab_size):
        raise ValueError(f"the tokenizer has {size} tokens but the text model only "
                         f"{config.text_config.vocab_size} embeddings: not this model's tokenizer")


class HFClapModel(AudioTextModel):
    """A transformers ``ClapModel`` behind the :class:`AudioTextModel` contract.

    ``embed_audio`` takes clips of any length: clips up to ``window_seconds`` are
    repeat-padded to the window (as transformers does); longer clips get the front window
    (unfused) or the fixed front/middle/back fusion crops (fused).
    """

    def __init__(self, model, features: "ClapFeatures", tokenizer, *, name: str,
                 content_digest: str, device: "torch.device", audio_batch_size: int = 16,
                 text_batch_size: int = 64, text_max_tokens: int | None = None) -> None:
        """``content_digest``: :meth:`_content_digest_of` the weights, audio features and tokenizer;
        ``text_max_tokens``: :attr:`text_max_length` (None: :meth:`_checked_text_tokens`'s default)."""
        self.model = model
        self.features = features
        self.tokenizer = tokenizer
        self.name = name
        self._content_digest = content_digest
        self.device = device
        self.sample_rate = features.params.sampling_rate
        self.window_seconds = features.params.max_length_s
        self.dim = int(model.config.projection_dim)
        self.fused = bool(model.config.audio_config.enable_fusion)
        # audio→text temperature of the checkpoint (transformers' logits_per_audio)
        self.logit_scale = float(model.logit_scale_a.detach().exp().clamp(max=100.0))
        self.audio_batch_size = audio_batch_size
        self.text_batch_size = text_batch_size
        max_pos = int(model.config.text_config.max_position_embeddings) - 2  # RoBERTa offset
        #: the most tokens the checkpoint's tokenizer and text model take (512 for laion/*)
        self.text_limit = min(int(tokenizer.model_max_length), max_pos)
        self.text_max_length = self._checked_text_tokens(text_max_tokens)

    @property
    def text_max_length(self) -> int:
        """Tokens (``<s>`` and ``</s>`` included) a text is cut at: LAION-CLAP's 77 unless set
        otherwise, at most :attr:`text_limit`. Part of :attr:`text_fingerprint`."""
        return self._text_max_length

    @text_max_length.setter
    def text_max_length(self, tokens: int) -> None:
        # a numpy integer (a count read from an array or a config) is a whole number too; a bool is not
        if isinstance(tokens, bool) or not isinstance(tokens, (int, np.integer)) or not 3 <= tokens <= self.text_limit:
            raise ValueError(f"{self.name}: text_max_length must be a whole number of tokens from 3 to "
                             f"{self.text_limit} (this checkpoint's limit), not {tokens!r}")
        self._text_max_length = int(tokens)

    def _checked_text_tokens(self, tokens: int | None) -> int:
        """``tokens``, else ``$SOUNDSIFT_CLAP_TEXT_TOKENS``, else LAION-CLAP's 77 (capped at the
        checkpoint's limit); ModelUnavailable naming the variable when it is not a valid count."""
        if tokens is not None:
            return tokens
        env = os.environ.get(TEXT_TOKENS_ENV, "").strip()
        if not env:
            return min(LAION_CLAP_TEXT_TOKENS, self.text_limit)
        # ASCII digits, few enough for int(): "²" is a digit to isdigit() but not to int(), and
        # int() refuses a number of more than 4300 digits
        if not (env.isascii() and env.isdigit() and len(env) < 10) or not 3 <= int(env) <= self.text_limit:
            raise ModelUnavailable(f"${TEXT_TOKENS_ENV}={env!r}: expected a whole number of tokens "
                                   f"from 3 to {self.text_limit} ({self.name}'s limit), or unset for "
                                   f"LAION-CLAP's {LAION_CLAP_TEXT_TOKENS}")
        return int(env)

    @property
    def fingerprint(self) -> str:
        """Weights, audio preprocessing and tokenizer (hashed once at load): what an index's
        audio vectors depend on. The same as before the text settings below existed, so indexes
        built with a checkpoint stay valid whatever its text limit."""
        return f"{BACKEND_VERSION}:{self._content_digest}"

    @property
    def text_fingerprint(self) -> str:
        """:attr:`fingerprint` plus the text encoding in use (:data:`TEXT_PIPELINE_VERSION`,
        :attr:`text_max_length`, right padding): text vectors cached under it were made the way
        this model makes them now."""
        text = {"pipeline": TEXT_PIPELINE_VERSION, "max_tokens": self.text_max_length,
                "padding": "right"}
        h = hashlib.sha256(self._content_digest.encode())
        h.update(json.dumps(text, sort_keys=True).encode())
        return f"{BACKEND_VERSION}:{h.hexdigest()}"

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path_or_id: str | Path, name: str | None = None, *,
             device: "str | torch.device | None" = None,
             text_max_tokens: int | None = None) -> "HFClapModel":
        """Load a CLAP checkpoint from a local folder or a hub id (cached or downloaded).

        ``text_max_tokens``: where texts are cut (None: ``$SOUNDSIFT_CLAP_TEXT_TOKENS``, else 77).
        Raises :class:`ModelUnavailable` when it cannot be had (offline and not cached,
        missing weights or processor files) or the variable is not a valid token count, and
        ValueError when ``text_max_tokens`` is not.
        """
        source = str(path_or_id)
        name = name or source
        folder = Path(source).expanduser()
        is_local = folder.is_dir()
        if is_local and not any((folder / f).is_file() for f in WEIGHT_FILES):
            raise ModelUnavailable(
                f"{folder}: no weights (expected model.safetensors or pytorch_model.bin next to "
                "config.json); save the checkpoint with ClapModel.save_pretrained, or pass a "
                "laion/* id on a connected machine")
        try:
            from transformers import AutoTokenizer, ClapModel
            from transformers import ClapFeatureExtractor as HFFeatureExtractor

            from engine.towers.minilm import quiet_loading

            with quiet_loading():
                model, hf_features, tokenizer = _from_cache_first(source, is_local, ClapModel,
                                                                  HFFeatureExtractor, AutoTokenizer)
            _check_tokenizer(tokenizer, model.config)
        except Exception as e:  # noqa: BLE001 - every load failure is reported as ModelUnavailable
            reason = _first_sentence(e)
            if is_local:
                raise ModelUnavailable(
                    f"{folder}: could not load the CLAP checkpoint ({reason}); the "
                    "folder needs config.json, weights, the processor config and tokenizer files "
                    "as written by ClapModel.save_pretrained + ClapProcessor.save_pretrained") from e
            raise ModelUnavailable(
                f"could not load {source} from the Hugging Face hub (offline or unknown id?): "
                f"{reason}. Connect once so transformers can download and cache "
                "it, or pass a local folder with config.json and weights") from e
        return cls.from_parts(model, hf_features, tokenizer, name=name, device=device,
                              text_max_tokens=text_max_tokens)

    @classmethod
    def from_parts(cls, model, hf_features, tokenizer, *, name: str,
                   device: "str | torch.device | None" = None,
                   text_max_tokens: int | None = None) -> "HFClapModel":
        """Wrap an already loaded transformers ClapModel + ClapFeatureExtractor + tokenizer."""
        from engine.models.clap_features import ClapFeatures

        dev = pick_device(device)
        fused = bool(model.config.audio_config.enable_fusion)
        if fused and hf_features.truncation != "fusion":
            log.warning("%s: fused model with truncation=%r; long clips get a front crop",
                        name, hf_features.truncation)
        if not fused and hf_features.truncation == "fusion":
            raise ModelUnavailable(
                f"{name}: the feature extractor asks for fusion (4-channel input) but the model "
                "has audio_config.enable_fusion = false; fix preprocessor_config.json "
                "('truncation': 'rand_trunc') or the model config")
        features = ClapFeatures.from_transformers(hf_features, device=dev)
        model = _in_float32(model, name)
        digest = cls._content_digest_of(model, features, tokenizer)
        model = model.to(dev).eval()
        batch = 64 if dev.type == "cuda" else 16
        return cls(model, features, tokenizer, name=name, content_digest=digest, device=dev,
                   audio_batch_size=batch, text_max_tokens=text_max_tokens)

    @staticmethod
    def _content_digest_of(model, features: "ClapFeatures", tokenizer) -> str:
        """sha256 over the weights, audio preprocessing and tokenizer (:attr:`fingerprint`; what
        :attr:`text_fingerprint` adds the text encoding to)."""
        preprocessing = {
            "backend": BACKEND_VERSION,
            "features": features.params.__dict__,
            "crops": "front-window / fusion front-middle-back fixed",
            "text_max_length": int(tokenizer.model_max_length),   # the tokenizer's (key kept: old indexes)
            "tokenizer": _tokenizer_digest(tokenizer),
        }
        h = hashlib.sha256()
        h.update(weights_digest(model).encode())
        h.update(json.dumps(preprocessing, sort_keys=True).encode())
        return h.hexdigest()

    # ---------------------------------------------------------------- embedding
    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Mono float32 clips at ``sample_rate`` (any length > 0) → (N, dim) L2-normalised.

        Raises ValueError naming the clip for an empty, non-finite or multi-channel waveform.
        """
        import torch

        out = np.zeros((len(waveforms), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(waveforms), self.audio_batch_size):
                chunk = waveforms[start: start + self.audio_batch_size]
                input_features, is_longer = self.features(chunk)
                pooled = _pooled(self.model.get_audio_features(
                    input_features=input_features.to(self.device), is_longer=is_longer.to(self.device)))
                out[start: start + len(chunk)] = pooled.float().cpu().numpy()
        return l2_normalize(out)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Strings → (N, dim) L2-normalised; each text cut at :attr:`text_max_length` tokens."""
        import torch

        if isinstance(texts, str):
            raise TypeError("embed_text takes a list of strings, not a single string")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is {type(t).__name__}, expected str")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.text_batch_size):
                chunk = texts[start: start + self.text_batch_size]
                # right padding whatever the tokenizer config says: the pooler reads token 0,
                # which left padding would make a pad token for every text but the longest
                tokens = self.tokenizer(chunk, padding=True, padding_side="right", truncation=True,
                                        max_length=self.text_max_length, return_tensors="pt")
                pooled = _pooled(self.model.get_text_features(
                    input_ids=tokens["input_ids"].to(self.device),
                    attention_mask=tokens["attention_mask"].to(self.device)))
                out[start: start + len(chunk)] = pooled.float().cpu().numpy()
        return l2_normalize(out)


def _in_float32(model: "torch.nn.Module", name: str) -> "torch.nn.Module":
    """``model`` with float32 weights: transformers 5 loads a checkpoint saved in float16 or
    bfloat16 as it is stored, and its audio tower then fails on the float32 features ("mixed
    dtype"); float32 also gives the same vectors as transformers 4, which always upcast."""
    import torch

    tensors = [*model.parameters(), *model.buffers()]
    stored = sorted({str(t.dtype).removeprefix("torch.") for t in tensors
                     if t.is_floating_point() and t.dtype != torch.float32})
    if not stored:
        return model
    log.info("%s: weights stored as %s are run in float32", name, "/".join(stored))
    return model.float()


def _from_cache_first(source: str, is_local: bool, *loaders: Any) -> tuple[Any, ...]:
    """``loader.from_pretrained(source)`` for each of ``loaders`` (model, feature extractor,
    tokenizer); a hub id is tried from the local cache alone first (``local_files_only``), so a
    checkpoint downloaded once loads without asking the hub, and an offline machine does not wait
    through the hub client's retries (about 25 s) for what it already has; only what is not
    cached asks the hub."""
    if not is_local:
        try:
            return tuple(loader.from_pretrained(source, local_files_only=True) for loader in loaders)
        except Exception as e:  # noqa: BLE001 - not (all) cached: ask the hub below
            log.debug("%s is not in the local Hugging Face cache (%s); asking the hub", source, _first_sentence(e))
    return tuple(loader.from_pretrained(source) for loader in loaders)
