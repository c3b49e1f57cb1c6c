"""FishBowl (Tangemann et al., "Unsupervised Object Learning via Common Fate"), as amodal video data.

    <root>/test_data/test_frames/<video>/<t:05d>.png
    <root>/test_data/test_data.pkl    {"<video>_<object>": {t: {"VM": RLE, "FM": RLE, ...}, ...}, ...}

``VM`` is the visible mask, ``FM`` the full (amodal) mask, each a COCO RLE (or a list of one). Every
frame of every object is one sample (frames are treated independently, as the paper does): image id
``<video>/<t:05d>``, object id ``<object>``; the other objects are those of the same frame.
``frame_stride`` keeps every n-th frame (1k videos × 128 frames is a lot).
"""

from __future__ import annotations

from collections.abc import Iterable

from amodal.data.annotated import AnnotatedDataset, AnnotatedImage, Region
from amodal.data.annotations import locate, natural_key, read_pickle, root_path
from amodal.errors import ConfigError, DatasetError

HINT = "; FishBowl's pickle maps '<video>_<object>' to {frame: {'VM': RLE, 'FM': RLE}}"


class FishbowlDataset(AnnotatedDataset):
    name = "fishbowl"
    mask_keys = ("FM", "VM")

    def __init__(
        self,
        root: str | None = None,
        annotations: str | None = None,
        images: str | None = None,
        split: str = "test",
        frame_stride: int = 1,
        limit: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(limit=limit)
        self.name = name or self.name
        if frame_stride < 1:
            raise ConfigError(f"dataset.frame_stride={frame_stride}: use 1 (every frame) or more")
        self.frame_stride = int(frame_stride)
        self.root = root_path(root, "FishBowl")
        self.annotations = locate(
            annotations,
            self.root,
            (f"{split}_data/{split}_data.pkl",),
            "annotations",
            "FishBowl annotation pickle",
        )
        self.images_dir = locate(
            images, self.root, (f"{split}_data/{split}_frames",), "images", "FishBowl frame folder"
        )

    def read_images(self) -> Iterable[AnnotatedImage]:
        path = self.annotations
        data = read_pickle(path)
        if not isinstance(data, dict):
            raise DatasetError(f"{path} holds a {type(data).__name__}, not a dict{HINT}")
        frames: dict[tuple[str, int], list[Region]] = {}
        for name, timeline in data.items():
            video, sep, obj = str(name).rpartition("_")
            if not sep or not video or not isinstance(timeline, dict):
                raise DatasetError(
                    f"{path}: entry {name!r} is not '<video>_<object>' → {{frame: masks}}{HINT}"
                )
            for t, masks in timeline.items():
                if not isinstance(t, int) and not str(t).isdigit():
                    raise DatasetError(f"{path}: {name} has frame {t!r}, expected a frame number{HINT}")
                if int(t) % self.frame_stride:
                    continue
                if not isinstance(masks, dict) or "VM" not in masks or "FM" not in masks:
                    raise DatasetError(f"{path}: {name} frame {t} has no 'VM' and 'FM' masks{HINT}")
                frames.setdefault((video, int(t)), []).append(
                    Region(object_id=obj, amodal=masks["FM"], visible=masks["VM"])
                )
        for video, t in sorted(frames, key=lambda k: (natural_key(k[0]), k[1])):
            yield AnnotatedImage(
                image_id=f"{video}/{t:05d}",
                file=self.images_dir / video / f"{t:05d}.png",
                source=path,
                regions=frames[video, t],
            )
