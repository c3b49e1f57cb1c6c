"""Other systems' predictions as they hand them in (method=external: a COCO-style results file or a folder of
PNGs), what an object without a prediction scores, and amodal-export, the objects another system runs on."""

import json
import logging

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from amodal.cli.export import export
from amodal.data.cocoa import CocoaDataset
from amodal.data.masks import encode
from amodal.data.synthetic import SyntheticDataset
from amodal.errors import AmodalError, ConfigError
from amodal.eval.metrics import summarize
from amodal.eval.results import read_rows
from amodal.eval.runs import load_runs
from amodal.method.external import ExternalPredictor
from tests.helpers import REPO, cli, composed, in_process, write_png

DEMO = REPO / "tests" / "data" / "cocoa_demo"
COCOA = ["dataset=cocoa", f"dataset.root={DEMO}", "output.pictures=0"]
SYNTHETIC = ["dataset.n_images=2", "dataset.size=96", "output.pictures=0"]


def list_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed RLE counts, written out here: run lengths of the column-major pixels, from a 0 run."""
    pixels = mask.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(pixels)) + 1
    runs = np.diff(np.concatenate([[0], changes, [pixels.size]])).tolist()
    return runs if pixels[0] == 0 else [0, *runs]


def occluded_truth(dataset) -> dict:
    """{key: amodal mask} of the objects a run scores (occluded, with masks)."""
    samples = (dataset.load(key) for key in dataset.keys())
    return {s.key: s.amodal for s in samples if s.amodal.any() and s.visible.any() and s.occlusion_rate > 0}


def write_results(path, entries) -> str:
    path.write_text(json.dumps(entries))
    return str(path)


def scored(run_dir) -> dict:
    return {(r["image_id"], r["object_id"]): r for r in read_rows(run_dir / "results.jsonl")
            if r.get("iou") is not None or r.get("skipped")}


def test_all_but_two_ground_truths_score_n_minus_2_over_n_and_one_with_missing_skip(run_app, tmp_path):
    """The done-when case on the COCO-A demo: the ground truth of every occluded object but two, in each
    form a results file may hold a mask (compressed and list counts, integer and string ids, ``id``)."""
    truth = occluded_truth(CocoaDataset(root=str(DEMO)))
    keys = list(truth)
    entries = []
    for i, key in enumerate(keys[2:]):
        rle = encode(truth[key]) if i % 2 else {"size": list(truth[key].shape), "counts": list_counts(truth[key])}
        ids = {"image_id": int(key.image_id), "object_id": key.object_id} if i % 3 else \
            {"image_id": key.image_id, "id": key.object_id}
        entries.append({**ids, "segmentation": rle})
    predictions = write_results(tmp_path / "predictions.json", entries)
    n = len(keys)
    assert n == 24

    metrics, run_dir = run_app(*COCOA, "method=external", f"method.predictions={predictions}",
                               run_dir=tmp_path / "empty")
    assert metrics["n"] == n and metrics["miou"] == pytest.approx((n - 2) / n, abs=1e-12)
    assert metrics["counts"]["missing"] == 2
    rows = scored(run_dir)
    for key in keys[:2]:
        assert rows[key]["iou"] == 0.0 and rows[key]["missing"] is True and rows[key]["predicted_area"] == 0
        assert rows[key]["missing_reason"] == f"no prediction for this object in {predictions}"
    assert all(rows[key]["iou"] == 1.0 and "missing" not in rows[key] for key in keys[2:])

    metrics, run_dir = run_app(*COCOA, "method=external", f"method.predictions={predictions}",
                               "method.missing=skip", run_dir=tmp_path / "skip")
    assert metrics["n"] == n - 2 and metrics["miou"] == 1.0 and metrics["counts"]["missing"] == 0
    skipped = {k: r["skipped"] for k, r in scored(run_dir).items() if r.get("skipped")}
    assert skipped == {key: f"no prediction for this object in {predictions}" for key in keys[:2]}


def test_bad_entries_are_named_in_one_warning_and_their_objects_follow_the_missing_rule(run_app, tmp_path, caplog):
    truth = occluded_truth(SyntheticDataset(n_images=2, size=96))
    (a, b, c, d, *rest) = list(truth)
    good = [{"image_id": k.image_id, "object_id": k.object_id, "segmentation": encode(truth[k])} for k in rest]
    counts = list_counts(truth[a])
    bad = [
        {"image_id": a.image_id, "object_id": a.object_id,  # malformed: runs short of 96 × 96
         "segmentation": {"size": [96, 96], "counts": counts[:-1]}},
        {"image_id": b.image_id, "object_id": b.object_id, "segmentation": encode(truth[b])},  # named twice
        {"image_id": b.image_id, "object_id": b.object_id, "segmentation": encode(truth[b])},
        {"image_id": c.image_id, "object_id": c.object_id,  # the wrong size: found when c is run
         "segmentation": encode(np.ones((48, 96), bool))},
        {"image_id": "no-such-image", "object_id": "0", "segmentation": encode(truth[d])},
        {"image_id": "no-such-image", "object_id": "1", "segmentation": encode(truth[d])},  # unknown, twice
        {"image_id": "no-such-image", "object_id": "1", "segmentation": encode(truth[d])},
        "not an entry",
        {"image_id": d.image_id, "object_id": d.object_id},  # no segmentation
    ]
    predictions = write_results(tmp_path / "bad.json", good + bad)
    with caplog.at_level(logging.WARNING):
        metrics, run_dir = run_app(*SYNTHETIC, "method=external", f"method.predictions={predictions}")
    warnings = [r.getMessage() for r in caplog.records if "entries are not used" in r.getMessage()]
    assert len(warnings) == 1
    (warning,) = warnings
    assert f"8 of its {len(good) + len(bad)} entries are not used" in warning
    assert "3 malformed" in warning and "uncompressed RLE's 'counts'" in warning
    assert f"entry {len(good) + 7} is a str" in warning and f"entry {len(good) + 8} has no segmentation" in warning
    assert ("3 name no object of dataset synthetic (image no-such-image object 0, image no-such-image object 1)"
            in warning)
    assert f"2 name an object twice (none of them is used) (image {b.image_id} object {b.object_id}: entries" in warning

    rows = scored(run_dir)
    assert metrics["counts"]["missing"] == 4 and metrics["n"] == len(truth)
    assert {k for k, r in rows.items() if r.get("missing")} == {a, b, c, d}
    assert rows[b]["missing_reason"] == (f"bad.json holds 2 predictions for this object (entries {len(good) + 1}, "
                                         f"{len(good) + 2}); none is used")
    assert "RLE is 96×48 (w×h) but its image is 96×96" in rows[c]["missing_reason"]
    assert all(rows[k]["iou"] == 1.0 for k in rest)


@pytest.mark.parametrize("content,message", [
    ({"annotations": []}, r"holds an object \(a ground-truth file\?\), not a list of results"),
    ("[1, 2", "is not a readable JSON file"),
    ([{"image_id": 1, "category_id": 3, "score": 0.9, "segmentation": {}}], "holds detection results"),
])
def test_a_predictions_file_that_is_not_a_results_list_is_one_line(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ConfigError, match=message):
        ExternalPredictor(predictions=str(path))
    with pytest.raises(ConfigError, match="does not exist"):
        ExternalPredictor(predictions=str(tmp_path / "none.json"))


def test_root_or_predictions_exactly_one_and_root_must_be_a_folder(tmp_path):
    results = tmp_path / "results.json"
    results.write_text("[]")
    with pytest.raises(ConfigError, match=rf"method.root={results} is a file, not a folder: .*"
                                          rf"or pass it as method.predictions={results}"):
        ExternalPredictor(root=str(results))
    with pytest.raises(ConfigError, match="both set"):
        ExternalPredictor(root=str(tmp_path), predictions=str(results))
    with pytest.raises(ConfigError, match="method.missing=guess: use empty"):
        ExternalPredictor(root=str(tmp_path), missing="guess")


def test_a_folder_of_pngs_scores_a_missing_or_wrongly_sized_file_as_an_empty_mask(run_app, tmp_path):
    dataset = SyntheticDataset(n_images=2, size=96)
    truth = occluded_truth(dataset)
    absent, small, *others = list(truth)
    for key in others:
        write_png(tmp_path / "masks" / key.image_id / f"{key.object_id}.png", truth[key])
    write_png(tmp_path / "masks" / small.image_id / f"{small.object_id}.png", np.ones((48, 48), bool))
    metrics, run_dir = run_app(*SYNTHETIC, "method=external", f"method.root={tmp_path / 'masks'}")
    n = len(truth)
    assert metrics["n"] == n and metrics["miou"] == pytest.approx((n - 2) / n) and metrics["counts"]["missing"] == 2
    rows = scored(run_dir)
    assert rows[absent]["iou"] == 0.0 and rows[absent]["missing_reason"] == (
        f"no prediction for this object: expected {tmp_path / 'masks' / absent.image_id / absent.object_id}.png")
    assert rows[small]["iou"] == 0.0 and "mask is 48×48 (w×h) but its image is 96×96" in rows[small]["missing_reason"]


def test_counts_missing_comes_from_the_rows():
    rows = [{"image_id": "i", "object_id": str(k), "occlusion_rate": 0.2, "iou": iou, "intersection": 0, "union": 1,
             **({"missing": True} if iou == 0 else {})} for k, iou in enumerate([0.0, 0.5, 0.0])]
    rows.append({"image_id": "i", "object_id": "s", "skipped": "no prediction for this object"})
    assert summarize(rows)["counts"]["missing"] == 2


def test_export_lists_what_a_run_predicts_with_masks_boxes_and_images(tmp_path):
    dataset = SyntheticDataset(n_images=2, size=96)
    exported = export(dataset, include_unoccluded=False, images_dir=tmp_path / "images")
    samples = {s.key: s for s in (dataset.load(k) for k in dataset.keys())}
    occluded = [k for k, s in samples.items() if s.occlusion_rate > 0]
    assert [(o["image_id"], o["object_id"]) for o in exported["objects"]] == occluded
    assert exported["left_out"] == {"unoccluded (eval.include_unoccluded=false)": len(samples) - len(occluded)}
    for entry in exported["objects"]:
        sample = samples[entry["image_id"], entry["object_id"]]
        rle = {"size": entry["visible"]["size"], "counts": entry["visible"]["counts"].encode()}
        assert np.array_equal(coco_mask.decode(rle).astype(bool), sample.visible)
        rows, columns = np.nonzero(sample.visible)
        assert entry["bbox"] == [columns.min(), rows.min(), np.ptp(columns) + 1, np.ptp(rows) + 1]
        assert entry["occlusion_rate"] == sample.occlusion_rate and entry["category"] == sample.category
        assert (entry["height"], entry["width"]) == sample.size
        from PIL import Image  # the generated image, written once per image

        assert np.array_equal(np.asarray(Image.open(entry["image"]).convert("RGB")), sample.image)
    assert len(list((tmp_path / "images").iterdir())) == 2
    everything = export(dataset, include_unoccluded=True, images_dir=tmp_path / "images")
    assert len(everything["objects"]) == len(samples) and everything["left_out"] == {}


def test_exported_visible_masks_scored_as_predictions_equal_method_visible(run_app, tmp_path):
    """The round trip, on the COCO-A demo: export, hand the visible masks back as predictions, score them."""
    with composed([*COCOA, "dataset.limit=30"], tmp_path) as cfg:
        from amodal.config import build

        exported = export(build(cfg.dataset, "dataset"), False, tmp_path / "images")
    assert all(o["image"].startswith(str(DEMO)) for o in exported["objects"])
    entries = [{"image_id": o["image_id"], "object_id": o["object_id"], "segmentation": o["visible"]}
               for o in exported["objects"]]
    predictions = write_results(tmp_path / "visible.json", entries)
    external, external_dir = run_app(*COCOA, "dataset.limit=30", "method=external",
                                     f"method.predictions={predictions}", run_dir=tmp_path / "external")
    visible, visible_dir = run_app(*COCOA, "dataset.limit=30", "method=visible", run_dir=tmp_path / "visible")
    same = ("iou", "intersection", "union", "predicted_area", "occlusion_rate", "visible_area", "amodal_area")
    ours, theirs = scored(external_dir), scored(visible_dir)
    assert len(ours) == len(entries) > 0 and ours.keys() == theirs.keys()
    for key in ours:
        assert {k: ours[key].get(k) for k in same} == {k: theirs[key].get(k) for k in same}
    assert external["miou"] == visible["miou"] and external["counts"]["missing"] == 0


def test_the_installed_commands_export_and_refuse_a_bad_results_file_in_one_line(tmp_path):
    out = tmp_path / "objects.json"
    helped = in_process("amodal-export", "--help")
    assert helped.returncode == 0 and "amodal-export dataset=cocoa" in helped.stdout
    done = cli("amodal-export", "dataset=cocoa", f"dataset.root={DEMO}", "dataset.limit=10", f"out={out}")
    assert done.returncode == 0, done.stderr
    exported = json.loads(out.read_text())
    assert len(exported["objects"]) == 10  # dataset.limit counts the objects scored; those before them are left out
    assert sum(exported["left_out"].values()) > 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"image_id": 1}')
    refused = in_process("amodal-run", *COCOA, "method=external", f"method.predictions={bad}", "logger=none",
                         f"hydra.run.dir={tmp_path / 'run'}")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"amodal-run: error: method.predictions={bad} holds an object, not a list of results: write "
        '[{"image_id": ..., "object_id": ..., "segmentation": ...}, ...], one entry per object']


def detection_results(dataset, keep) -> list[dict]:
    """Perfect detections (the amodal mask, score 1) of the objects ``keep`` accepts, no object ids."""
    entries = []
    for i, key in enumerate(dataset.keys()):
        sample = dataset.load(key)
        if keep(i):
            category = {"category": sample.category} if i % 2 else {"category_id": sample.category}
            entries.append({"image_id": key.image_id, **category, "score": 1.0 - i / 100,
                            "segmentation": encode(sample.amodal)})
    return entries


def test_ap_of_perfect_detections_is_one_and_of_some_is_cocos_101_point_recall(run_app, tmp_path):
    """COCO AP with every object of some categories found exactly: precision 1 up to recall k/n, 0 after,
    so each category's AP is the share of COCO's 101 recall thresholds at most k/n (0 with nothing found),
    whatever the IoU threshold."""
    dataset = SyntheticDataset(n_images=2, size=96)
    samples = [dataset.load(key) for key in dataset.keys()]
    perfect = write_results(tmp_path / "perfect.json", detection_results(dataset, lambda i: True))
    metrics, run_dir = run_app(*SYNTHETIC, "method=external", f"method.predictions={perfect}", "eval.metric=ap",
                               run_dir=tmp_path / "perfect")
    assert metrics["ap"] == metrics["ap50"] == metrics["ap75"] == metrics["ar100"] == pytest.approx(1.0)
    assert metrics["counts"]["objects"] == len(samples) and metrics["counts"]["detections"] == len(samples)
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    with pytest.raises(AmodalError, match="holds COCO AP/AR .eval.metric=ap., not mIoU"):  # no buckets to table
        load_runs([run_dir])

    found = write_results(tmp_path / "some.json", detection_results(dataset, lambda i: i % 3 == 0))
    metrics, _ = run_app(*SYNTHETIC, "method=external", f"method.predictions={found}", "eval.metric=ap",
                         run_dir=tmp_path / "some")
    per_category = {}
    for i, sample in enumerate(samples):
        n, k = per_category.get(sample.category, (0, 0))
        per_category[sample.category] = (n + 1, k + (i % 3 == 0))
    thresholds = np.linspace(0, 1, 101)
    expected = np.mean([np.mean(thresholds <= k / n) if k else 0.0 for n, k in per_category.values()])
    assert metrics["ap"] == pytest.approx(expected) and metrics["ap50"] == pytest.approx(expected)
    assert 0 < metrics["ap"] < 1


def test_ap_names_unused_detections_in_one_warning(tmp_path, caplog):
    from amodal.eval.ap import average_precision

    dataset = SyntheticDataset(n_images=1, size=96)
    entries = detection_results(dataset, lambda i: True)
    entries += [{"image_id": "elsewhere", "category": "disc", "score": 1.0, "segmentation": []},
                {**entries[0], "category": "dragon"}, {**entries[0], "score": "high"}]
    with caplog.at_level(logging.WARNING):
        metrics = average_precision(dataset, entries, "dets.json")
    (warning,) = [r.getMessage() for r in caplog.records if "not used" in r.getMessage()]
    assert f"dets.json: 3 of its {len(entries)} entries are not used" in warning
    assert "image elsewhere has no object of the dataset" in warning and "category dragon" in warning
    assert metrics["counts"]["unused_entries"] == 3 and metrics["ap"] == pytest.approx(1.0)


def test_ap_needs_a_results_file_and_method_external_refuses_detections_with_the_way_to_score_them(run_app, tmp_path):
    with pytest.raises(ConfigError, match="eval.metric=ap scores a detection results file: add method=external"):
        run_app(*SYNTHETIC, "method=visible", "eval.metric=ap")
    dataset = SyntheticDataset(n_images=1, size=96)
    detections = write_results(tmp_path / "dets.json", detection_results(dataset, lambda i: True))
    with pytest.raises(ConfigError, match="holds detection results .* score them with eval.metric=ap"):
        ExternalPredictor(predictions=detections)


def test_ap_on_kins_reads_numeric_category_ids_through_the_files_categories(kins_dataset, tmp_path):
    """As AISFormer writes KINS results: integer image ids and category ids; swapping the two categories must
    find nothing."""
    from amodal.data.kins import KinsDataset
    from amodal.eval.ap import average_precision

    dataset = KinsDataset(root=str(kins_dataset))
    entries = []
    for key in dataset.keys():
        sample = dataset.load(key)
        number = {"cyclist": 1, "car": 2}[sample.category]
        entries.append({"image_id": int(key.image_id), "category_id": number, "score": 0.9,
                        "segmentation": encode(sample.amodal)})
    assert average_precision(dataset, entries)["ap"] == pytest.approx(1.0)
    swapped = [{**e, "category_id": 3 - e["category_id"]} for e in entries]
    assert average_precision(dataset, swapped)["ap"] == 0.0
