"""One table from family name to pipeline class and tiny builder (``models/pipelines.py``): every backbone
config names one of its families, and loading, the tiny models and the method's adapters all read it."""

import pytest
import torch
from diffusers import StableDiffusionInpaintPipeline

from amodal.config import config_dir
from amodal.errors import ConfigError
from amodal.method.families import FAMILIES
from amodal.models.loading import PretrainedPipeline, TinyPipeline, pipeline_class
from amodal.models.pipelines import PIPELINES, PipelineFamily
from amodal.models.tiny import tiny_pipeline, tiny_sd
from tests.helpers import composed


def test_every_backbone_config_names_a_family_of_the_table_and_every_family_has_one(tmp_path):
    backbones = sorted(p.stem for p in (config_dir() / "backbone").glob("*.yaml") if not p.stem.startswith("_"))
    named = {}
    for backbone in backbones:
        with composed([f"backbone={backbone}"], tmp_path) as cfg:
            named[backbone] = cfg.backbone.pipeline.family
    assert len(backbones) >= 12 and set(named.values()) == set(PIPELINES), named
    assert {f"tiny_{family}" for family in PIPELINES} <= set(named)  # each family runs on CPU in the tests


@pytest.mark.parametrize("family", list(PIPELINES))
def test_each_tiny_builder_builds_its_families_pipeline_class_and_the_method_has_its_adapter(family):
    assert type(tiny_pipeline(family)) is PIPELINES[family].pipeline is pipeline_class(family)
    assert FAMILIES[family].name == family
    assert list(FAMILIES) == list(PIPELINES)  # an adapter for each family, none for a family the table lacks


def test_loading_and_the_tiny_models_read_the_table(monkeypatch):
    """A family added to the table is one that loading accepts and the tiny models build; one taken out
    is refused by both, in one line that lists what the table holds."""
    monkeypatch.setitem(PIPELINES, "sd_copy", PipelineFamily(StableDiffusionInpaintPipeline, tiny_sd))
    assert pipeline_class("sd_copy") is StableDiffusionInpaintPipeline
    assert isinstance(TinyPipeline("sd_copy").load("cpu", torch.float32), StableDiffusionInpaintPipeline)
    monkeypatch.delitem(PIPELINES, "sd_copy")
    monkeypatch.delitem(PIPELINES, "sd3")
    listed = "use one of sd, sdxl, flux, flux_fill$"
    with pytest.raises(ConfigError, match=f"^backbone family 'sd3': {listed}"):
        PretrainedPipeline("sd3", "stabilityai/stable-diffusion-3.5-medium")
    with pytest.raises(ConfigError, match=f"^backbone family 'sd3': {listed}"):
        TinyPipeline("sd3")
    with pytest.raises(ConfigError, match=f"^tiny backbone family 'sd3': {listed}"):
        tiny_pipeline("sd3")
