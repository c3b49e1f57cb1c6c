"""SAM 2.1 (Ravi et al. 2024) inside our Hydra app, without patching the sam2 package.

sam2 takes over Hydra's global state: ``import sam2`` calls ``initialize_config_module("sam2")`` when
nobody has initialised Hydra, and ``build_sam2`` composes its model YAML against whatever search path
is global — inside ``amodal-run`` that is ours, so it fails ("Cannot find primary config"). So:

* sam2 is imported lazily, through ``import_sam2``, which clears the global Hydra state again when the
  import is what initialised it (a later ``@hydra.main`` or ``compose`` in the same process still works);
* ``build_sam2`` is never called: the model YAML packaged with sam2 (``sam2/configs/sam2.1/*.yaml``) is
  read with ``importlib.resources`` + OmegaConf, merged with the post-processing settings
  ``build_sam2`` adds and any size overrides (the tiny model), and built with ``hydra.utils.instantiate``,
  which needs no global state.

Model descriptions follow ``amodal.models.sam``: ``check()``, ``build()``, ``predictor(module)``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from amodal.errors import ConfigError, ModelNotFoundError
from amodal.models.sam import load_state_dict
from amodal.models.stamps import file_stamp
from amodal.seeding import seeded

SIZES = {
    # size: (packaged YAML, official checkpoint, Hugging Face repo holding that checkpoint)
    "t": ("sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt", "facebook/sam2.1-hiera-tiny"),
    "s": ("sam2.1_hiera_s.yaml", "sam2.1_hiera_small.pt", "facebook/sam2.1-hiera-small"),
    "b+": ("sam2.1_hiera_b+.yaml", "sam2.1_hiera_base_plus.pt", "facebook/sam2.1-hiera-base-plus"),
    "l": ("sam2.1_hiera_l.yaml", "sam2.1_hiera_large.pt", "facebook/sam2.1-hiera-large"),
}
DOWNLOAD = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
POSTPROCESSING = {
    # what build_sam2(apply_postprocessing=True) adds for image prediction: fall back to the
    # multimask output when the single mask is unstable
    "dynamic_multimask_via_stability": True,
    "dynamic_multimask_stability_delta": 0.05,
    "dynamic_multimask_stability_thresh": 0.98,
}


def import_sam2(module: str = "sam2"):
    """Import a sam2 module without leaving Hydra's global state initialised by sam2's ``__init__``."""
    hydra = GlobalHydra.instance()
    initialised = hydra.is_initialized()
    try:
        return importlib.import_module(module)
    finally:
        if not initialised and hydra.is_initialized():
            hydra.clear()


def sam2_config(yaml_name: str, overrides: dict[str, Any] | None = None) -> DictConfig:
    """sam2's packaged model YAML with the image-prediction post-processing and ``overrides`` (dotted
    keys under ``model``, e.g. ``{"image_encoder.trunk.embed_dim": 8}``) merged in, resolved."""
    package = import_sam2()
    path = importlib.resources.files(package) / "configs" / "sam2.1" / yaml_name
    cfg = OmegaConf.create(path.read_text())
    cfg.model.sam_mask_decoder_extra_args = dict(POSTPROCESSING)
    for key, value in (overrides or {}).items():
        if OmegaConf.select(cfg.model, key.rsplit(".", 1)[0] if "." in key else "", default=None) is None:
            raise ConfigError(f"sam2 override {key}: no such node in {yaml_name}")
        OmegaConf.update(cfg.model, key, value, force_add=True)
    OmegaConf.resolve(cfg)
    return cfg


def build_sam2_module(cfg: DictConfig):
    import_sam2("sam2.modeling.sam2_base")
    return instantiate(cfg.model, _recursive_=True).eval()


class Sam2PredictorMixin:
    def stamp(self) -> tuple | None:
        """What the weights are, beyond the description itself: nothing for the tiny models (their weights
        come from their seed); the official ones give their checkpoint's."""
        return None

    def predictor(self, module):
        predictor_module = import_sam2("sam2.sam2_image_predictor")
        predictor = predictor_module.SAM2ImagePredictor(module)
        # SAM2ImagePredictor assumes the 1024 px input (feature maps of 256, 128, 64); the tiny and the
        # reduced-size benchmark models have another input size, and its features are 4, 8, 16× smaller
        side = module.image_size
        predictor._bb_feat_sizes = [(side // 4, side // 4), (side // 8, side // 8), (side // 16, side // 16)]
        return predictor


@dataclass(frozen=True)
class Sam2Model(Sam2PredictorMixin):
    """An official SAM 2.1: ``size`` t | s | b+ | l, weights from ``checkpoint`` or, when that is null,
    the official file name in ``checkpoint_dir``, else in the Hugging Face cache (never downloaded)."""

    size: str = "l"
    checkpoint: str | None = None
    checkpoint_dir: str = "checkpoints"

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ConfigError(f"SAM 2.1 size {self.size!r}: use one of {', '.join(SIZES)}")

    @property
    def name(self) -> str:
        return f"sam2.1_{self.size}"

    def checkpoint_path(self) -> Path | None:
        _, filename, repo = SIZES[self.size]
        if self.checkpoint:
            path = Path(self.checkpoint).expanduser()
            return path if path.is_file() else None
        path = Path(self.checkpoint_dir).expanduser() / filename
        if path.is_file():
            return path
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo, filename)
        return Path(cached) if isinstance(cached, str) else None

    def check(self) -> Path:
        path = self.checkpoint_path()
        if path is None:
            _, filename, repo = SIZES[self.size]
            where = self.checkpoint or str(Path(self.checkpoint_dir).expanduser() / filename)
            raise ModelNotFoundError(
                f"SAM 2.1 {self.size} checkpoint {where} not found: download it with "
                f"`wget -O {where} {DOWNLOAD}{filename}` or `huggingface-cli download {repo} {filename}` "
                f"(or set extractor.model.checkpoint=/path/to/{filename})"
            )
        return path

    def stamp(self) -> tuple | None:
        """The checkpoint as it is now (the model cache's key: a file replaced under the same name is loaded
        anew)."""
        return file_stamp(self.checkpoint_path())

    def build(self):
        path = self.check()
        module = build_sam2_module(sam2_config(SIZES[self.size][0]))
        state = load_state_dict(path, f"SAM 2.1 {self.size}")
        try:
            module.load_state_dict(state["model"] if "model" in state else state)
        except RuntimeError as err:
            raise ModelNotFoundError(f"{path} is not a SAM 2.1 {self.size} checkpoint "
                                     f"({str(err).splitlines()[0]})") from None
        return module


def reduced_input(image_size: int) -> dict[str, Any]:
    """Overrides that run a SAM 2.1 model on a square input of ``image_size`` instead of 1024."""
    if image_size % 32:
        raise ConfigError(f"SAM 2.1 image_size={image_size} must be a multiple of 32 (its coarsest stride)")
    return {"image_size": image_size, "image_encoder.neck.position_encoding.image_size": image_size}


def tiny_overrides(width: int, d_model: int, image_size: int) -> dict[str, Any]:
    """The sizes of sam2.1_hiera_t.yaml shrunk to a toy: one or two blocks per Hiera stage, ``width``
    channels at the first stage, ``d_model`` channels after the neck, on a ``image_size`` input."""
    memory = d_model // 2
    return {
        **reduced_input(image_size),
        "image_encoder.trunk.embed_dim": width,
        "image_encoder.trunk.num_heads": 1,
        "image_encoder.trunk.stages": [1, 1, 2, 1],
        "image_encoder.trunk.global_att_blocks": [3],  # not a stage's first (pooling) block
        "image_encoder.trunk.window_pos_embed_bkg_spatial_size": [4, 4],
        "image_encoder.neck.d_model": d_model,
        "image_encoder.neck.backbone_channel_list": [8 * width, 4 * width, 2 * width, width],
        "image_encoder.neck.position_encoding.num_pos_feats": d_model,
        "memory_attention.d_model": d_model,
        "memory_attention.num_layers": 1,
        "memory_attention.layer.d_model": d_model,
        "memory_attention.layer.dim_feedforward": 2 * d_model,
        "memory_attention.layer.self_attention.embedding_dim": d_model,
        "memory_attention.layer.cross_attention.embedding_dim": d_model,
        "memory_attention.layer.cross_attention.kv_in_dim": memory,
        "memory_encoder.out_dim": memory,
        "memory_encoder.in_dim": d_model,
        "memory_encoder.position_encoding.num_pos_feats": memory,
        "memory_encoder.mask_downsampler.embed_dim": d_model,
        "memory_encoder.fuser.num_layers": 1,
        "memory_encoder.fuser.layer.dim": d_model,
    }


@dataclass(frozen=True)
class TinySam2Model(Sam2PredictorMixin):
    """SAM 2.1's classes, from its packaged hiera_t YAML shrunk to toy sizes, with weights drawn from
    ``seed``: no file, fast on a CPU."""

    width: int = 8
    d_model: int = 32
    image_size: int = 256
    seed: int = 0

    name = "tiny_sam2"

    def check(self) -> None:
        pass

    def build(self):
        cfg = sam2_config(SIZES["t"][0], tiny_overrides(self.width, self.d_model, self.image_size))
        return seeded(self.seed, lambda: build_sam2_module(cfg))
