"""Small datasets written in each real format (COCOA, KINS, FishBowl, SAILVOS), with known masks.

One scene of axis-aligned rectangles (pycocotools fills the polygon (x0, y0)–(x1, y1) as the pixels
[y0:y1, x0:x1], clipped to the image), so every expected mask is a numpy slice:

    car     amodal (2,3)-(20,15), partly behind the person
    person  (12,8)-(30,25), unoccluded
    tree    two parts: (50,-5)-(65,6) past the top and right borders, (40,30)-(48,45) past the bottom;
            the sign cuts its first part in two
    sign    (53,-2)-(56,10), unoccluded, past the top border
    wall    stuff, (0,30)-(10,40) in the bottom-left corner
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal.data.masks import encode
from tests.helpers import write_png

H, W = 40, 60


@dataclass
class Thing:
    name: str
    amodal_rects: list[tuple[int, int, int, int]]
    visible_rects: list[tuple[int, int, int, int]]
    stuff: bool = False

    @property
    def amodal(self) -> np.ndarray:
        return rect_mask(self.amodal_rects)

    @property
    def visible(self) -> np.ndarray:
        return rect_mask(self.visible_rects)

    @property
    def occluded(self) -> bool:
        return not np.array_equal(self.amodal, self.visible)

    @property
    def rate(self) -> float:
        return 1.0 - self.visible.sum() / self.amodal.sum()


SCENE = [
    Thing("wall", [(0, 30, 10, 40)], [(0, 30, 10, 40)], stuff=True),
    Thing("car", [(2, 3, 20, 15)], [(2, 3, 20, 8), (2, 8, 12, 15)]),
    Thing("person", [(12, 8, 30, 25)], [(12, 8, 30, 25)]),
    Thing("tree", [(50, -5, 65, 6), (40, 30, 48, 45)], [(50, 0, 53, 6), (56, 0, 60, 6), (40, 30, 48, 40)]),
    Thing("sign", [(53, -2, 56, 10)], [(53, -2, 56, 10)]),
]


def rect_mask(rects) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    for x0, y0, x1, y1 in rects:
        mask[max(y0, 0) : min(y1, H), max(x0, 0) : min(x1, W)] = True
    return mask


def polygon(rect) -> list[float]:
    x0, y0, x1, y1 = rect
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _scene_is_consistent() -> None:
    """Each visible mask is its amodal mask minus the objects in front of it (later in SCENE)."""
    for i, thing in enumerate(SCENE):
        front = np.logical_or.reduce([t.amodal for t in SCENE[i + 1 :]] + [np.zeros((H, W), bool)])
        assert np.array_equal(thing.visible, thing.amodal & ~front), thing.name


_scene_is_consistent()


def cocoa_region(thing: Thing, order: int, rate: float | None = None) -> dict:
    region = {
        "segmentation": polygon(thing.amodal_rects[0])
        if len(thing.amodal_rects) == 1
        else [polygon(r) for r in thing.amodal_rects],
        "name": thing.name,
        "area": int(thing.amodal.sum()),
        "isStuff": int(thing.stuff),
        "occlude_rate": thing.rate if rate is None else rate,
        "order": order,
    }
    if thing.occluded:  # COCOA stores visible/invisible RLE only for occluded regions
        region["visible_mask"] = encode(thing.visible)
        region["invisible_mask"] = encode(thing.amodal & ~thing.visible)
    return region


def write_cocoa(root: Path, bsds: bool = False, rates: dict[str, float] | None = None) -> Path:
    """COCO_amodal_val2014.json (or BSDS_amodal_test.json) under root/annotations and 2 images.

    Image 1 holds the whole scene; image 2 the car and the person. BSDS-A: image 1 has a second
    annotator who drew only the car, larger and unoccluded."""
    rates = rates or {}
    if bsds:
        annotations, images = (
            root / "annotations" / "BSDS_amodal_test.json",
            root / "BSR/BSDS500/data/images/test",
        )
    else:
        annotations, images = root / "annotations" / "COCO_amodal_val2014.json", root / "val2014"
    entries, anns = [], []
    for image_id, things in ((1, SCENE), (2, SCENE[1:3])):
        name = f"{image_id:06d}.png"
        write_png(images / name, image(image_id))
        entries.append({"id": image_id, "file_name": name, "height": H, "width": W, "license": 1})
        regions = [cocoa_region(t, order, rates.get(t.name)) for order, t in enumerate(things, 1)]
        anns.append({"id": 10 * image_id, "image_id": image_id, "regions": regions, "size": len(regions)})
    if bsds:
        big_car = Thing("car", [(1, 1, 25, 20)], [(1, 1, 25, 20)])
        anns.append({"id": 11, "image_id": 1, "regions": [cocoa_region(big_car, 1)], "size": 1})
    annotations.parent.mkdir(parents=True, exist_ok=True)
    annotations.write_text(json.dumps({"images": entries, "annotations": anns}))
    return root


def write_kins(root: Path, layout: str = "2020") -> Path:
    """KINS over testing/image_2/: ``layout="2020"`` writes update_test_2020.json (``a_segm``/``i_segm``
    polygons, several parts); ``layout="instances"`` the first release's instances_val.json, as
    deocclusion reads it (``segmentation`` amodal polygons, ``inmodal_seg`` visible compressed RLE)."""
    images, anns = [], []
    for image_id in (3, 4):
        name = f"{image_id:06d}.png"
        write_png(root / "testing" / "image_2" / name, image(image_id))
        images.append({"id": image_id, "file_name": name, "height": H, "width": W})
        for k, thing in enumerate(t for t in SCENE if not t.stuff):
            ann = {"id": 100 * image_id + k, "image_id": image_id, "category_id": k % 2 + 1, "iscrowd": 0}
            if layout == "2020":
                ann.update(
                    a_segm=[polygon(r) for r in thing.amodal_rects],
                    i_segm=[polygon(r) for r in thing.visible_rects],
                    a_area=int(thing.amodal.sum()),
                    i_area=int(thing.visible.sum()),
                    a_bbox=[0, 0, 1, 1],
                    i_bbox=[0, 0, 1, 1],
                    oco_id=1,
                    ico_id=k,
                )
            else:
                ann.update(
                    segmentation=[polygon(r) for r in thing.amodal_rects],
                    inmodal_seg=encode(thing.visible),
                    area=int(thing.amodal.sum()),
                    bbox=[0, 0, 1, 1],
                    inmodal_bbox=[0, 0, 1, 1],
                )
            anns.append(ann)
    categories = [
        {"id": 1, "name": "cyclist", "supercategory": "Living Thing"},
        {"id": 2, "name": "car", "supercategory": "vehicles"},
    ]
    root.mkdir(parents=True, exist_ok=True)
    file = "update_test_2020.json" if layout == "2020" else "instances_val.json"
    (root / file).write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return root


FISHBOWL_FRAMES = {"00003": 6, "00010": 4}
"""FishBowl videos (named as SaVos' pickle names them, ``%05d``) → frames."""
COVER = (6, 1, 6, 16, 5, 10)
"""Columns of fish 1 (video 00003) that fish 2 covers in frames 0–5: occlusion rates 0.3, 0.05, 0.3, 0.8,
0.25, 0.5."""


def fishbowl_scene(video: str, t: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The fish of frame t: object → (full mask FM, visible mask VM), back to front.

    Video 00003: fish 1 (20×20) behind fish 2, which swims over it (``COVER``); fish 3 in frames 2–4 only.
    Video 00010: fish 4 half hidden behind fish 5 in every frame."""
    if video == "00003":
        c = COVER[t]
        fish = {"1": rect_mask([(10, 10, 30, 30)]), "2": rect_mask([(c - 10, 5, c + 10, 35)])}
        if 2 <= t <= 4:
            fish["3"] = rect_mask([(40, 5, 50, 15)])
    else:
        fish = {"4": rect_mask([(5, 5, 25, 25)]), "5": rect_mask([(15, 0, 35, 40)])}
    scene, front = {}, np.zeros((H, W), bool)
    for name in reversed(fish):  # each fish is hidden by those drawn after it
        scene[name] = (fish[name], fish[name] & ~front)
        front |= fish[name]
    return {name: scene[name] for name in fish}


def fishbowl_frame(video: str, t: int) -> np.ndarray:
    return image(1000 * int(video) + t)


NOT_IN_SUBSET = {("00003", "1", 4): "test=0", ("00010", "4", 2): "no row"}
"""Frames SaVos' evaluation would score but that the written test-subset list leaves out."""


def write_fishbowl(root: Path, first_and_last_listed: bool = False) -> Path:
    """FishBowl as SaVos distributes it: test_data/test_data.pkl, test_data/test_frames/<video>/ and the
    test-subset list test_files/test_subtest.csv.

    Each pickle frame holds what SaVos' preprocessing writes: ``FM``/``VM`` as pycocotools' ``_mask.encode``
    returns them (a list of one RLE with bytes counts), ``FM_bx``/``VM_bx`` (numpy ints), ``OCC_R``
    (numpy float, 1 − |VM|/|FM|), ``IoU``, ``loss_mask_weight`` and ``fish_type``. The list has SaVos'
    columns, one row per object and frame without each object's first and last frame (unless
    ``first_and_last_listed``), ``test`` = 1 except ``NOT_IN_SUBSET``. Frame names are documented
    nowhere (SaVos' reader takes frame t as the t-th file in name order): written from 00001.png, so a
    reader that takes the name for t reads the wrong frame."""
    from pycocotools import mask as coco_mask

    def rle(mask):
        return coco_mask.encode(np.asfortranarray(mask[:, :, None].astype(np.uint8)))

    def box(mask):
        ys, xs = np.nonzero(mask)
        return [ys.min(), ys.max(), xs.min(), xs.max()]  # numpy ints, as SaVos' get_crop_coord

    data: dict[str, dict[int, dict]] = {}
    rows = []
    for video, count in FISHBOWL_FRAMES.items():
        for t in range(count):
            write_png(root / "test_data" / "test_frames" / video / f"{t + 1:05d}.png", fishbowl_frame(video, t))
            for fish, (full, visible) in fishbowl_scene(video, t).items():
                occlusion = 1 - np.sum(visible) / np.sum(full)
                data.setdefault(f"{video}_{fish}", {})[t] = {
                    "FM_bx": box(full),
                    "FM": rle(full),
                    "VM_bx": box(visible),
                    "VM": rle(visible),
                    "OCC_R": occlusion,
                    "IoU": None,
                    "loss_mask_weight": rle(~visible),
                    "fish_type": f"fish{fish}",
                }
    for name, timeline in data.items():
        video, fish = name.split("_")
        frames = sorted(timeline) if first_and_last_listed else sorted(timeline)[1:-1]
        for t in frames:
            left_out = NOT_IN_SUBSET.get((video, fish, t))
            if left_out == "no row":
                continue
            test = 0 if left_out == "test=0" else 1
            rows.append([len(rows), int(video), int(fish), f"fish{fish}", t, timeline[t]["OCC_R"], test])
    with (root / "test_data" / "test_data.pkl").open("wb") as handle:
        pickle.dump(data, handle)
    subset = root / "test_files" / "test_subtest.csv"
    subset.parent.mkdir(parents=True, exist_ok=True)
    header = ",v_id,obj_id,Type,frame_id,OCC_R,test"  # pandas' unnamed index column first
    subset.write_text("\n".join([header, *(",".join(str(v) for v in row) for row in rows)]) + "\n")
    return root


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths of 0s and 1s, column-major, starting with 0s."""
    flat = mask.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    return {"size": [H, W], "counts": counts}


HIDDEN = Thing("cat", [(20, 26, 30, 36)], [(20, 26, 30, 28)])
"""A SAILVOS object 80 % hidden (by something unannotated): above the 0.75 of published evaluations."""
SAILVOS_THINGS = [t for t in SCENE if not t.stuff] + [HIDDEN]


def write_sailvos(root: Path, layout: str = "distributed") -> Path:
    """valid.json with amodal masks as compressed RLE, uncompressed RLE and polygons, and its frames.

    ``layout="distributed"``: as SAILVOS ships, ``file_name`` is ``<video>/images/<frame>.bmp`` relative to
    the root, and every annotation has ``visible_mask``. ``layout="images"``: older copies, frames under
    ``images/<video>/<frame>.bmp``, ``file_name`` without the suffix, ``visible_mask`` only where occluded."""
    from PIL import Image

    images, anns = [], []
    for image_id, frame in ((7, "000010"), (8, "000011")):
        video = "ah_1_mcs_1"
        if layout == "distributed":
            name = f"{video}/images/{frame}.bmp"
            path = root / name
        else:
            name = f"{video}/{frame}"
            path = root / "images" / f"{name}.bmp"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image(image_id)).save(path)
        images.append(
            {"id": image_id, "file_name": name, "height": H, "width": W, "frame_id": image_id, "video_id": 1}
        )
        for k, thing in enumerate(SAILVOS_THINGS):
            amodal = (
                encode(thing.amodal),
                uncompressed_rle(thing.amodal),
                [polygon(r) for r in thing.amodal_rects],
            )[k % 3]
            ann = {
                "id": 1000 * image_id + k,
                "image_id": image_id,
                "category_id": 1 + k % 2,
                "obj_id": k,
                "model_id": 100 + k,
                "segmentation": amodal,
                "occlude_rate": thing.rate,
                "area": int(thing.amodal.sum()),
                "area_visible": int(thing.visible.sum()),
                "bbox": [0, 0, 1, 1],
                "bbox_visible": [0, 0, 1, 1],
                "iscrowd": 0,
                "occlu_depth": 0,
            }
            if thing.occluded or layout == "distributed":
                ann["visible_mask"] = encode(thing.visible)
                ann["invisible_mask"] = encode(thing.amodal & ~thing.visible)
            anns.append(ann)
    root.mkdir(parents=True, exist_ok=True)
    (root / "valid.json").write_text(
        json.dumps(
            {
                "images": images,
                "annotations": anns,
                "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
                "videos": [{"id": 1, "vid_name": "ah_1_mcs_1", "num_frames": 2, "num_objs": 5}],
            }
        )
    )
    return root
