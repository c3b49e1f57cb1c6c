"""The pipeline families a backbone can be: one table from family name to its diffusers inpainting pipeline
class and the builder of its tiny random-weight copy (``models/tiny.py``).

Loading (``models/loading.py``), the tiny models and the method's family adapters
(``method/families.py``) all read this table, as diffusers keeps ``AUTO_INPAINT_PIPELINES_MAPPING`` and
SAM its ``sam_model_registry``; a new family is one entry here and one adapter there
(``docs/backbones.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from diffusers import (
    DiffusionPipeline,
    FluxFillPipeline,
    FluxInpaintPipeline,
    StableDiffusion3InpaintPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLInpaintPipeline,
)

from amodal.models import tiny


@dataclass(frozen=True)
class PipelineFamily:
    pipeline: type[DiffusionPipeline]  # the stock diffusers class that loads and runs it
    tiny: Callable[..., DiffusionPipeline]  # its builder at toy width (random weights; options as the builder's)


PIPELINES: dict[str, PipelineFamily] = {
    "sd": PipelineFamily(StableDiffusionInpaintPipeline, tiny.tiny_sd),
    "sdxl": PipelineFamily(StableDiffusionXLInpaintPipeline, tiny.tiny_sdxl),
    "flux": PipelineFamily(FluxInpaintPipeline, tiny.tiny_flux),
    "sd3": PipelineFamily(StableDiffusion3InpaintPipeline, tiny.tiny_sd3),
    "flux_fill": PipelineFamily(FluxFillPipeline, tiny.tiny_flux_fill),
}
