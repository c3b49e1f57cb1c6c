"""Loading inpainting pipelines: pretrained weights by hub id or local folder, or tiny random ones.

A pipeline source has a fast ``check()`` (is the model on this machine?) that the method runs before
building anything, and ``load(device, dtype)``. A model that is missing is one line naming it and the
command that downloads it; a real model that is asked for never falls back to random weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from amodal.errors import ConfigError, ModelNotFoundError
from amodal.models.pipelines import PIPELINES
from amodal.models.stamps import is_local, weights_stamp
from amodal.models.tiny import tiny_pipeline

log = logging.getLogger(__name__)


class NoFloat32FalseAlarm(logging.Filter):
    """Drops diffusers' "There are modules in AutoencoderKL that should be kept in float32: []" warning. Its
    ``ModelMixin.to`` says it on every cast to a dtype, even when the list of such modules is empty, and the
    SD/SDXL pipelines cast their VAE to float32 and back on every image they encode (``force_upcast``, as the
    real SDXL VAE has it): about 20 lines for a few objects, each about nothing. A non-empty list still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("There are modules in ") and "should be kept in float32: []." in message)


logging.getLogger("diffusers.models.modeling_utils").addFilter(NoFloat32FalseAlarm())  # where diffusers says it


@contextlib.contextmanager
def quiet_loading():
    """No diffusers or transformers loading bars (one per pipeline, one per text encoder) while loading:
    the run's own progress bar is the one a user reads."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    enabled = [(lib, lib.is_progress_bar_enabled()) for lib in (diffusers_logging, transformers_logging)]
    for lib, _ in enabled:
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, was_enabled in enabled:
            if was_enabled:
                lib.enable_progress_bar()


def pipeline_class(family: str):
    """The diffusers pipeline class of ``family`` (``models/pipelines.py``)."""
    if family not in PIPELINES:
        raise ConfigError(f"backbone family {family!r}: use one of {', '.join(PIPELINES)}")
    return PIPELINES[family].pipeline


def _hub_reachable() -> bool:
    """Whether the hub's host resolves (a quick DNS look-up; no retries, unlike a download)."""
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


class PipelineSource:
    family = "sd"

    def check(self) -> None:
        """Raise ``ModelNotFoundError`` now, in well under a second, if ``load`` would not find the model."""

    def load(self, device: str, dtype: torch.dtype):
        raise NotImplementedError

    def __str__(self) -> str:
        """The model as a message names it."""
        return self.family

    def identity(self) -> tuple:
        """What determines the loaded weights: equal identities load equal pipelines."""
        return (type(self).__name__, self.family)


class PretrainedPipeline(PipelineSource):
    """A diffusers inpainting pipeline by hub id (from the Hugging Face cache, or downloaded when
    ``local_files_only`` is false and the hub is reachable) or by local folder (``save_pretrained``).
    ``gated``: the hub serves it only to accounts that accepted its licence, which the message on a
    missing model then says."""

    def __init__(
        self,
        family: str,
        model: str,
        revision: str | None = None,
        variant: str | None = None,
        local_files_only: bool = False,
        quantize: str | None = None,
        gated: bool = False,
    ) -> None:
        pipeline_class(family)
        check_quantize(quantize)
        self.family, self.model, self.revision, self.variant = family, model, revision, variant
        self.local_files_only, self.quantize, self.gated = local_files_only, quantize, gated

    def __str__(self) -> str:
        return self.model

    def identity(self) -> tuple:
        stamp = json.dumps(weights_stamp(self.model, self.revision), sort_keys=True)
        return ("pretrained", self.family, self.model, self.revision, self.variant, self.quantize, stamp)

    def _how_to_get(self) -> str:
        if is_local(self.model):
            return ("the folder is incomplete or damaged: write the pipeline into it again (save_pretrained), "
                    "or point backbone.pipeline.model at another folder")
        revision = f" --revision {self.revision}" if self.revision else ""
        access = (f"a gated model: accept its licence at https://huggingface.co/{self.model} and "
                  "`huggingface-cli login` first" if self.gated else "needs access to the hub")
        return (f"download it with `huggingface-cli download {self.model}{revision}` ({access}), "
                "or set backbone.pipeline.model to a local pipeline folder")

    def check(self) -> None:
        if is_local(self.model):
            folder = Path(self.model).expanduser()
            if not (folder / "model_index.json").is_file():
                raise ModelNotFoundError(
                    f"backbone.pipeline.model={self.model}: no model_index.json there; "
                    "point it at a diffusers pipeline folder (one written by save_pretrained)"
                )
            return
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(self.model, "model_index.json", revision=self.revision)
        if isinstance(cached, str):
            return
        offline = self.local_files_only or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
        if offline or not _hub_reachable():
            why = "downloads are off" if offline else "the hub cannot be reached"
            raise ModelNotFoundError(
                f"model {self.model} is not in the Hugging Face cache and {why}; {self._how_to_get()}"
            )
        log.info("model %s is not cached: it will be downloaded", self.model)

    def load(self, device: str, dtype: torch.dtype):
        self.check()
        cls = pipeline_class(self.family)
        extra = {"safety_checker": None, "requires_safety_checker": False} if self.family == "sd" else {}
        try:
            with quiet_loading():
                pipe = cls.from_pretrained(
                    str(Path(self.model).expanduser()) if is_local(self.model) else self.model,
                    revision=self.revision, variant=self.variant, dtype=dtype,
                    local_files_only=self.local_files_only, **extra,
                )
        except (OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelNotFoundError(f"cannot load {self.model} ({first}); {self._how_to_get()}") from err
        if self.quantize:
            quantize_transformer(pipe, self.quantize)
        return pipe.to(device)


def check_quantize(quantize: str | None) -> None:
    if quantize not in (None, "qint8", "qfloat8"):
        raise ConfigError(f"backbone.pipeline.quantize={quantize!r}: use null, qint8 or qfloat8")


def quantize_transformer(pipe, weights: str) -> None:
    """8-bit weights for the denoiser and the T5 text encoder (Flux's text_encoder_2, SD3's text_encoder_3),
    as the paper did for Flux on a 24 GB card; CLIP stays as it is."""
    try:
        from optimum import quanto
    except ImportError as err:
        raise ConfigError(
            "backbone.pipeline.quantize needs optimum-quanto: `pip install optimum-quanto` (or use quantize=null)"
        ) from err
    from transformers import T5EncoderModel

    qtype = getattr(quanto, weights)
    denoisers = [getattr(pipe, name, None) for name in ("transformer", "unet")]
    encoders = [getattr(pipe, name, None) for name in ("text_encoder_2", "text_encoder_3")]
    for module in [m for m in denoisers if m is not None] + [m for m in encoders if isinstance(m, T5EncoderModel)]:
        quanto.quantize(module, weights=qtype)
        quanto.freeze(module)


class TinyPipeline(PipelineSource):
    """A tiny random-weight pipeline of ``family`` (``models/tiny.py``): the real classes, toy width;
    ``quantize`` as a real one's (a variant that runs Flux in 8 bits runs a tiny backbone in 8 bits too)."""

    def __init__(self, family: str, seed: int = 0, quantize: str | None = None) -> None:
        pipeline_class(family)
        check_quantize(quantize)
        self.family, self.seed, self.quantize = family, seed, quantize

    def __str__(self) -> str:
        return f"tiny-{self.family}"

    def identity(self) -> tuple:
        return ("tiny", self.family, self.seed, self.quantize)

    def load(self, device: str, dtype: torch.dtype):
        pipe = tiny_pipeline(self.family, self.seed).to(device)
        pipe = pipe if dtype == torch.float32 else pipe.to(dtype=dtype)  # built in float32 already
        if self.quantize:
            quantize_transformer(pipe, self.quantize)
        return pipe
