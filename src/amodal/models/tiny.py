"""Tiny inpainting pipelines: the real diffusers and transformers classes at toy width, random weights.

They run every code path of the real backbones on a CPU in seconds (shapes, dtypes, the leakage and
guidance arithmetic, batching, determinism), never accuracy. Weights are drawn from a fixed seed, and
tokenizers are written from a tiny in-memory vocabulary: no file from any hub is needed.

The geometry matches the real models: the VAE downsamples by 8, SD-family UNets take 9 input channels
([latents | mask | masked-image latents]), Flux latents have 16 channels packed 2×2, SD3's 16 channels in
2×2 patches; FLUX.1-Fill's transformer takes the packed masked-image latents and mask as 320 more channels.
"""

from __future__ import annotations

import string

from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxFillPipeline,
    FluxInpaintPipeline,
    FluxTransformer2DModel,
    PNDMScheduler,
    SD3Transformer2DModel,
    StableDiffusion3InpaintPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLInpaintPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

from amodal.errors import ConfigError
from amodal.seeding import seeded

TEXT_WIDTH = 32


def _characters() -> list[str]:
    return [c for c in string.printable if not c.isspace()]


def clip_tokenizer() -> CLIPTokenizer:
    """CLIP's byte-pair tokenizer over single printable characters (no merges): enough for any prompt."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in _characters():
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def t5_tokenizer() -> T5Tokenizer:
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)] + [(c, -2.0) for c in _characters()]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def clip_text_encoder(tokenizer: CLIPTokenizer, with_projection: bool = False):
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=TEXT_WIDTH,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config).eval()


def t5_encoder(tokenizer: T5Tokenizer, width: int = TEXT_WIDTH) -> T5EncoderModel:
    return T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=width, d_kv=8, d_ff=37, num_layers=2,
                                   num_heads=4, decoder_start_token_id=0)).eval()


FLUX_VAE = {"shift_factor": 0.1159, "scaling_factor": 0.3611}
SD3_VAE = {"shift_factor": 0.0609, "scaling_factor": 1.5305}
"""The 16-channel VAEs' latent normalisation, as in the real models' configs."""


def vae(latent_channels: int = 4, normalisation: dict | None = None) -> AutoencoderKL:
    """Four blocks, so the VAE downsamples by 8 like SD's, SD3's and Flux's; the 16-channel ones have no
    quant convs and shift their latents (``normalisation``)."""
    extra = {"use_quant_conv": False, "use_post_quant_conv": False, **normalisation} if normalisation else {}
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=(16, 16, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=8, sample_size=128, **extra,
    ).eval()


def _sd_unet(in_channels: int = 9, **extra) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=16, in_channels=in_channels, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=8, **extra,
    ).eval()


def tiny_sd(unet_channels: int = 9) -> StableDiffusionInpaintPipeline:
    """``unet_channels=4``: a text-to-image UNet (latents only), which the same pipeline runs with its
    own eq. 5 blend after every step instead of feeding it the mask."""
    tokenizer = clip_tokenizer()
    return StableDiffusionInpaintPipeline(
        vae=vae(),
        text_encoder=clip_text_encoder(tokenizer),
        tokenizer=tokenizer,
        unet=_sd_unet(unet_channels, cross_attention_dim=TEXT_WIDTH, attention_head_dim=8),
        scheduler=PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def tiny_sdxl() -> StableDiffusionXLInpaintPipeline:
    tokenizer, tokenizer_2 = clip_tokenizer(), clip_tokenizer()
    time_embed = 8
    return StableDiffusionXLInpaintPipeline(
        vae=vae(),
        text_encoder=clip_text_encoder(tokenizer),
        text_encoder_2=clip_text_encoder(tokenizer_2, with_projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=_sd_unet(
            cross_attention_dim=2 * TEXT_WIDTH, attention_head_dim=(2, 4), use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=time_embed,
            transformer_layers_per_block=(1, 2),
            # 6 size/crop conditioning numbers, each embedded, plus the pooled text embedding
            projection_class_embeddings_input_dim=6 * time_embed + TEXT_WIDTH,
        ),
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         steps_offset=1, timestep_spacing="leading"),
        requires_aesthetics_score=False, force_zeros_for_empty_prompt=True,
    )


def _flux_transformer(in_channels: int = 64, guidance_embeds: bool = False) -> FluxTransformer2DModel:
    return FluxTransformer2DModel(
        patch_size=1, in_channels=in_channels, out_channels=64, num_layers=1, num_single_layers=1,
        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=TEXT_WIDTH,
        pooled_projection_dim=TEXT_WIDTH, axes_dims_rope=(4, 4, 8), guidance_embeds=guidance_embeds,
    ).eval()


def tiny_flux() -> FluxInpaintPipeline:
    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    return FluxInpaintPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False),
        vae=vae(latent_channels=16, normalisation=FLUX_VAE),
        text_encoder=clip_text_encoder(tokenizer),
        tokenizer=tokenizer,
        text_encoder_2=t5_encoder(tokenizer_2),
        tokenizer_2=tokenizer_2,
        transformer=_flux_transformer(),
    )


def tiny_flux_fill() -> FluxFillPipeline:
    """FLUX.1-Fill-dev's layout: 64 packed latent channels, then the packed masked-image latents (64) and
    the mask, each 8×8 pixel block folded into 64 channels and packed 2×2 (256); a guidance embedding
    (FLUX.1-dev is guidance-distilled) and the resolution-dependent schedule shift of the real scheduler."""
    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    return FluxFillPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                                                  max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096),
        vae=vae(latent_channels=16, normalisation=FLUX_VAE),
        text_encoder=clip_text_encoder(tokenizer),
        tokenizer=tokenizer,
        text_encoder_2=t5_encoder(tokenizer_2),
        tokenizer_2=tokenizer_2,
        transformer=_flux_transformer(in_channels=64 + 64 + 256, guidance_embeds=True),
    )


def tiny_sd3() -> StableDiffusion3InpaintPipeline:
    """SD3.5's layout: CLIP-L and CLIP-G (both with projection; their pooled outputs concatenated), T5 as
    wide as the two CLIPs' hidden states side by side, an MMDiT-X transformer (a dual-attention layer, RMS
    query/key norm) on 16-channel latents in 2×2 patches, and SD3.5's flow-matching shift of 3."""
    tokenizer, tokenizer_2, tokenizer_3 = clip_tokenizer(), clip_tokenizer(), t5_tokenizer()
    return StableDiffusion3InpaintPipeline(
        transformer=SD3Transformer2DModel(
            sample_size=16, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
            num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=2 * TEXT_WIDTH,
            pooled_projection_dim=2 * TEXT_WIDTH, pos_embed_max_size=32, dual_attention_layers=(0,),
            qk_norm="rms_norm",
        ).eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae(latent_channels=16, normalisation=SD3_VAE),
        text_encoder=clip_text_encoder(tokenizer, with_projection=True),
        tokenizer=tokenizer,
        text_encoder_2=clip_text_encoder(tokenizer_2, with_projection=True),
        tokenizer_2=tokenizer_2,
        text_encoder_3=t5_encoder(tokenizer_3, width=2 * TEXT_WIDTH),
        tokenizer_3=tokenizer_3,
    )


def tiny_pipeline(family: str, seed: int = 0, **options):
    """A tiny pipeline of ``family`` with weights drawn from ``seed`` (the global RNG is left as it was);
    ``options`` go to its builder (``unet_channels=4`` for sd)."""
    from amodal.models.pipelines import PIPELINES  # the table names this module's builders

    if family not in PIPELINES:
        raise ConfigError(f"tiny backbone family {family!r}: use one of {', '.join(PIPELINES)}")
    return seeded(seed, lambda: PIPELINES[family].tiny(**options))
