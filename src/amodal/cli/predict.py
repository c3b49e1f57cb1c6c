"""``amodal-predict``: the amodal mask of one object in one image, for in-the-wild use.

    amodal-predict image=photo.jpg visible=mask.png out=predictions/ backbone=sdxl extractor=sam
    amodal-predict image=photo.jpg visible=mask.png intermediates=true experiment=quickstart

Writes ``<name>_amodal.png`` (255 inside, the image's size), ``<name>_overlay.png`` (V in blue, what the
method added, Â \\ V, in orange) and, with ``intermediates=true``, ``<name>_area.png`` (M, the image's size)
and the pictures the model saw and drew at its view, named with the view and its size:
``<name>_condition_crop512x512.png`` and ``<name>_inpainted_crop512x512.png`` (``view`` instead of ``crop``
when the view is the whole image, resized).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from amodal.cli.command_line import check_run_settings
from amodal.cli.errors import one_line_errors
from amodal.config import build, check_device, config_dir
from amodal.data.files import limit_image_pixels, read_image, read_mask, save_png, write_mask
from amodal.errors import ConfigError, SampleError
from amodal.eval.pictures import prediction_overlay
from amodal.sample import Sample
from amodal.seeding import object_seed


def predict(cfg: DictConfig) -> dict[str, Path]:
    """Predict and write the files; returns them by kind."""
    for key in ("image", "visible"):
        if OmegaConf.is_missing(cfg, key):
            raise ConfigError(f"{key}= is missing: amodal-predict image=photo.jpg visible=mask.png [out=folder]")
    check_device(str(cfg.runtime.device))
    limit_image_pixels(cfg.runtime.max_image_pixels)
    image = read_image(cfg.image)
    visible = read_mask(cfg.visible, image.shape[:2])
    if not visible.any():
        raise SampleError(f"visible mask {cfg.visible} is empty: nothing marks the object")
    name = cfg.name or Path(cfg.image).stem
    sample = Sample(dataset="input", image_id=name, object_id="0", image=image, visible=visible)
    predictor = build(cfg.method, "method")
    (prediction,) = predictor.predict([sample], [object_seed(int(cfg.runtime.seed), sample.key)])
    out = Path(cfg.out)
    written = {"amodal": out / f"{name}_amodal.png", "overlay": out / f"{name}_overlay.png"}
    write_mask(written["amodal"], prediction.mask)
    save_png(written["overlay"], prediction_overlay(image, visible, prediction.mask))
    if cfg.intermediates:
        for kind, picture in prediction.pictures.items():
            size = "" if picture.shape[:2] == image.shape[:2] else \
                f"_{'crop' if cfg.view.mode == 'crop' else 'view'}{picture.shape[1]}x{picture.shape[0]}"
            written[kind] = out / f"{name}_{kind}{size}.png"
            if picture.dtype == bool:
                write_mask(written[kind], picture)
            else:
                save_png(written[kind], np.asarray(picture, np.uint8))
    return written


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="predict")
@one_line_errors("amodal-predict", hydra_task=True)
def _hydra_main(cfg: DictConfig) -> None:
    written = predict(cfg)
    for kind, path in written.items():
        print(f"{kind}: {path}")


def main() -> None:
    check_run_settings("amodal-predict")
    _hydra_main()


if __name__ == "__main__":
    main()
