"""FishBowl (Tangemann et al., "Unsupervised Object Learning via Common Fate") as SaVos distributes it.

    <root>/test_data/test_frames/<video>/<frame image>        128 frames per video
    <root>/test_data/test_data.pkl    {"<video>_<object>": {t: {"VM", "FM", "OCC_R", "fish_type", ...}}}
    <root>/test_files/test_subtest.csv                         the test-subset list (v_id, obj_id, frame_id,
                                                               OCC_R, test, ...), SaVos' test_files.zip

``VM`` is the visible mask, ``FM`` the full (amodal) mask, each a COCO RLE (or a list of one); ``OCC_R``
is 1 − |VM|/|FM| as SaVos computed it, kept as the annotated occlusion and checked against the masks.
Frame t of a video is the t-th image of its folder in name order, as SaVos' reader takes it. Each object
in each frame is one sample: image id ``<video>/<t:05d>``, object id ``<object>``; the other objects are
those of the same frame.

``official_filter`` (on by default) scores what SaVos' evaluation scores (``utils/test_subset_eval.py``):
the frames of the test-subset list whose ``OCC_R`` is in (0.1, 0.7), without each object's first and
last frame. Off, every frame of every object is scored, as the paper describes FishBowl ("1k videos of
128 frames each, with each frame treated independently"). Unscored objects stay in their frame as
occluders. ``frame_stride`` keeps every n-th frame.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from amodal.data.annotated import AnnotatedDataset, AnnotatedImage, Region, inside
from amodal.data.annotations import locate, natural_key, read_pickle, root_path
from amodal.data.files import IMAGE_SUFFIXES, require_regular
from amodal.errors import ConfigError, DatasetError, SampleError
from amodal.lru import LRUCache

HINT = "; FishBowl's pickle maps '<video>_<object>' to {frame: {'VM': RLE, 'FM': RLE}}"
OCCLUSION = (0.1, 0.7)
"""SaVos' evaluation keeps the frames with 0.1 < OCC_R < 0.7 (open interval)."""
SUBSET_COLUMNS = ("v_id", "obj_id", "frame_id", "OCC_R")
OFF = "; or set dataset.official_filter=false to score every frame"


class FishbowlDataset(AnnotatedDataset):
    name = "fishbowl"
    mask_keys = ("FM", "VM")
    standard_annotations = ("{split}_data/{split}_data.pkl",)
    standard_images = ("{split}_data/{split}_frames",)
    standard_subset = ("{split}_files/{split}_subtest.csv", "{split}_subtest.csv")
    """Where the official filter's list (SaVos' test_files.zip) lies under ``dataset.root``."""

    def __init__(
        self,
        root: str | None = None,
        annotations: str | None = None,
        images: str | None = None,
        split: str = "test",
        official_filter: bool = True,
        subset: str | None = None,
        frame_stride: int = 1,
        limit: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(limit=limit)
        self.name = name or self.name
        if frame_stride < 1:
            raise ConfigError(f"dataset.frame_stride={frame_stride}: use 1 (every frame) or more")
        self.frame_stride = int(frame_stride)
        self.official_filter = bool(official_filter)
        files_given = bool(annotations and images)
        self.root = root_path(
            root,
            "FishBowl",
            needed=not files_given or (self.official_filter and not subset),
            otherwise=f", or pass dataset.subset=/path/to/test_subtest.csv (the official filter's list){OFF}"
            if files_given
            else "",
        )
        self.annotations = locate(
            annotations,
            self.root,
            self.standard(self.standard_annotations, split=split),
            "annotations",
            "FishBowl annotation pickle",
        )
        self.images_dir = locate(
            images, self.root, self.standard(self.standard_images, split=split), "images", "FishBowl frame folder"
        )
        self.subset: Path | None = None
        if self.official_filter:
            self.subset = locate(
                subset,
                self.root,
                self.standard(self.standard_subset, split=split),
                "subset",
                "FishBowl test-subset list (test_subtest.csv in SaVos' test_files.zip)",
                OFF,
            )
        self._frames: LRUCache[list[Path]] = LRUCache(size=2)

    def filters(self) -> dict[str, object]:
        return {"official_filter": True} if self.official_filter else {}

    def image_file(self, image: AnnotatedImage) -> Path:
        folder = inside(image.file, self.images_dir, image.source)
        t = int(image.image_id.rpartition("/")[2])
        frames = self._frames.get(str(folder), lambda: _frame_files(folder))
        if t >= len(frames):
            count = f"{len(frames)} image" + ("" if len(frames) == 1 else "s")
            raise SampleError(
                f"frame folder {folder} has {count}, so no frame {t} (frame t is its t-th image in name order)"
            )
        return frames[t]

    def read_images(self) -> Iterable[AnnotatedImage]:
        path = self.annotations
        data = read_pickle(path)
        if not isinstance(data, dict):
            raise DatasetError(f"{path} holds a {type(data).__name__}, not a dict{HINT}")
        subset = read_subset(self.subset) if self.subset is not None else None
        frames: dict[tuple[str, int], list[Region]] = {}
        for name, timeline in data.items():
            video, sep, obj = str(name).rpartition("_")
            if not sep or not video or not isinstance(timeline, dict):
                raise DatasetError(
                    f"{path}: entry {name!r} is not '<video>_<object>' → {{frame: masks}}{HINT}"
                )
            seen: dict[int, object] = {}
            for t in timeline:
                if not isinstance(t, int) and not str(t).isdigit():
                    raise DatasetError(f"{path}: {name} has frame {t!r}, expected a frame number{HINT}")
                if int(t) in seen:
                    raise DatasetError(f"{path}: {name} has frames {seen[int(t)]!r} and {t!r}, one frame number "
                                       f"twice; keep one of them{HINT}")
                seen[int(t)] = t
            ends = {min(map(int, timeline)), max(map(int, timeline))} if timeline else set()
            for t, masks in timeline.items():
                t = int(t)
                if t % self.frame_stride:
                    continue
                if not isinstance(masks, dict) or "VM" not in masks or "FM" not in masks:
                    raise DatasetError(f"{path}: {name} frame {t} has no 'VM' and 'FM' masks{HINT}")
                listed = None if subset is None else subset.get(_subset_key(video, obj, t, path))
                occlusion = masks.get("OCC_R", listed)
                frames.setdefault((video, t), []).append(
                    Region(
                        object_id=obj,
                        amodal=masks["FM"],
                        visible=masks["VM"],
                        category=str(masks.get("fish_type", "")),
                        annotated_occlusion=None if occlusion is None else float(occlusion),
                        evaluated=subset is None or _savos_scores(listed, t, ends),
                    )
                )
        for video, t in sorted(frames, key=lambda k: (natural_key(k[0]), k[1])):
            yield AnnotatedImage(
                image_id=f"{video}/{t:05d}",
                file=self.images_dir / video,  # the frame folder: frame t is its t-th image
                source=path,
                regions=frames[video, t],
            )


def _savos_scores(listed: float | None, t: int, ends: set[int]) -> bool:
    """Whether SaVos' evaluation scores frame t of an object: the subset list holds it (``listed``, its
    OCC_R there) with 0.1 < OCC_R < 0.7, and it is not the object's first or last frame (``ends``)."""
    return listed is not None and OCCLUSION[0] < listed < OCCLUSION[1] and t not in ends


def read_subset(path: Path) -> dict[tuple[int, int, int], float]:
    """SaVos' test-subset list: (video, object, frame) → OCC_R of each row it marks ``test`` (all, where
    the column is absent)."""
    require_regular(path, "subset list", DatasetError)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in SUBSET_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise DatasetError(
                    f"{path}: the subset list has no column {', '.join(missing)} (it needs "
                    f"{', '.join(SUBSET_COLUMNS)}); is it SaVos' test_subtest.csv?{OFF}"
                )
            rows = {}
            for line, row in enumerate(reader, start=2):
                try:
                    if "test" in row and float(row["test"]) != 1:
                        continue
                    key = (int(float(row["v_id"])), int(float(row["obj_id"])), int(float(row["frame_id"])))
                    rows[key] = float(row["OCC_R"])
                except (TypeError, ValueError) as err:
                    raise DatasetError(f"{path}: line {line} is not a row of numbers ({err}){OFF}") from err
            return rows
    except OSError as err:
        raise DatasetError(f"{path} cannot be read ({err.strerror or err})") from err
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path} is not a text CSV ({err}); is it SaVos' test_subtest.csv?{OFF}") from err


def _subset_key(video: str, obj: str, t: int, path: Path) -> tuple[int, int, int]:
    """The subset list names videos and objects by number ("00012_3" is v_id 12, obj_id 3)."""
    try:
        return int(video), int(obj), t
    except ValueError as err:
        raise DatasetError(
            f"{path}: entry '{video}_{obj}' has no numeric video and object id, so the test-subset list "
            f"cannot name it{OFF}"
        ) from err


def _frame_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SampleError(f"frame folder {folder} does not exist")
    images = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(images, key=lambda p: natural_key(p.name))
