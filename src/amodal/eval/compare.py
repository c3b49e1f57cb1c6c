"""Two runs on the same objects: the per-object difference ΔIoU = IoU_B − IoU_A, its mean with a paired
bootstrap interval (``bootstrap.py``), how many objects each run wins, overall, per occlusion bucket and on
the hidden part (``iou_occ``, C2F-Seg's mIoU_occ), and panels of the largest wins and losses.

The objects compared are those both runs scored, each by the rule metrics.json counts it by
(``metrics.counts_in_miou`` with the run's own ``eval.include_unoccluded``), matched by (dataset, image id,
object id). Objects that only one run scored are counted and named, never silently dropped. Runs on
different datasets (another dataset, root, split or filter; ``dataset.limit`` aside, which only shortens
the list) are refused: their objects would share ids, not pixels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from omegaconf import OmegaConf

from amodal.config import build
from amodal.data.files import mask_path, read_mask, safe_name, save_png, write_atomic
from amodal.errors import AmodalError
from amodal.eval.bootstrap import CONFIDENCE, METHOD, RESAMPLES, SEED, seeded_interval
from amodal.eval.identity import format_value, run_labels
from amodal.eval.metrics import BUCKETS, TOLERANCE, bucket_label, counts_in_miou
from amodal.eval.pictures import COLOURS, overlay, tile_row
from amodal.eval.results import read_rows
from amodal.eval.run_folder import MASKS_DIR, RESULTS_FILE, written_config
from amodal.eval.table import to_markdown
from amodal.sample import ObjectKey

COMPARE_FILE = "compare.json"
SUMMARY_FILE = "compare.md"
GALLERY_DIR = "gallery"
TIE = 1e-9
"""|ΔIoU| at most this is a tie (``--tie``): by default only equal IoUs, up to float rounding."""
GALLERY = 6
"""Panels of the largest wins, and as many of the largest losses (``--gallery``)."""
NOT_THE_DATASET = ("limit",)
"""Dataset settings that select fewer of the same objects, not other objects: runs may differ in them."""
NAMED = 50
"""Objects that only one run scored, named in compare.md (compare.json names all of them)."""


class CompareError(AmodalError):
    """Two run folders that cannot be compared."""


@dataclass
class RunSide:
    """One of the two runs: its folder, rows and the config it wrote."""

    path: Path
    label: str
    rows: list[dict]
    config: dict
    """.hydra/resolved.yaml (else config.yaml as written; {} for a folder without .hydra/)."""

    @property
    def include_unoccluded(self) -> bool:
        return bool((self.config.get("eval") or {}).get("include_unoccluded", False))

    @property
    def buckets(self) -> tuple[float, ...]:
        return tuple((self.config.get("eval") or {}).get("buckets", BUCKETS))

    def counted(self) -> dict[tuple[str, str, str], dict]:
        """The rows that count in this run's mIoU, by (dataset, image id, object id)."""
        return {object_id(r): r for r in self.rows if counts_in_miou(r, self.include_unoccluded)}


def object_id(row: dict) -> tuple[str, str, str]:
    return str(row.get("dataset", "")), str(row["image_id"]), str(row["object_id"])


def load_side(path: str | Path, label: str) -> RunSide:
    path = Path(path)
    if not (path / RESULTS_FILE).is_file():
        raise CompareError(f"{path} holds no {RESULTS_FILE}: pass a run folder that amodal-run wrote")
    config = written_config(path, "resolved.yaml") or written_config(path)
    return RunSide(path, label, read_rows(path / RESULTS_FILE), config)


def dataset_identity(side: RunSide, configured: bool = True) -> dict[str, str]:
    """The settings that decide which objects and pixels a run saw: its resolved ``dataset`` section but
    ``limit``, by dotted key; the rows' dataset names for a folder without a config (or not ``configured``)."""
    section = side.config.get("dataset")
    if not isinstance(section, dict) or not configured:
        return {"dataset (from the rows)": ", ".join(sorted({str(r.get("dataset", "")) for r in side.rows}))}
    return {key: format_value(value) for key, value in _leaves(section, "dataset.")
            if key.rsplit(".", 1)[-1] not in NOT_THE_DATASET}


def _leaves(node, prefix: str):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


def check_same_dataset(a: RunSide, b: RunSide) -> None:
    """Refuse two runs on different datasets: by their configs, or by their rows' dataset names where a
    folder has no config to tell."""
    configured = all(isinstance(side.config.get("dataset"), dict) for side in (a, b))
    first, second = dataset_identity(a, configured), dataset_identity(b, configured)
    differ = [k for k in dict.fromkeys([*first, *second]) if first.get(k) != second.get(k)]
    if differ:
        said = "; ".join(f"{k}: {first.get(k, '–')} vs {second.get(k, '–')}" for k in differ)
        raise CompareError(f"{a.path} and {b.path} ran on different datasets ({said}); "
                           "compare two runs on the same dataset")


def differences(before: Sequence[float], after: Sequence[float], *, tie: float, seed: int,
                resamples: int) -> dict:
    """The paired statistics of one set of objects: n, each run's mean, the mean ΔIoU (after − before)
    with its bootstrap interval, and wins (Δ > tie), losses (Δ < −tie) and ties."""
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    delta = after - before
    n = len(delta)
    return {
        "n": n,
        "mean_a": math.fsum(before) / n if n else None,
        "mean_b": math.fsum(after) / n if n else None,
        "mean_delta": math.fsum(delta) / n if n else None,
        "ci95": _pair(seeded_interval(delta, seed, resamples)),
        "wins": int((delta > tie).sum()),
        "losses": int((delta < -tie).sum()),
        "ties": int((np.abs(delta) <= tie).sum()),
    }


def _pair(interval):
    return None if interval is None else list(interval)


def _why_not(row: dict | None, side: RunSide) -> str:
    """Why a run did not score an object the other run scored."""
    if row is None:
        return f"not in {side.label}'s {RESULTS_FILE}"
    if row.get("skipped"):
        return f"skipped by {side.label}: {row['skipped']}"
    if row.get("unscored"):
        return f"not scored by {side.label}: {row['unscored']}"
    return f"not counted by {side.label} (unoccluded, or no ground truth)"


def compare_runs(path_a: str | Path, path_b: str | Path, *, seed: int = SEED, resamples: int = RESAMPLES,
                 tie: float = TIE) -> tuple[dict, RunSide, RunSide, list[dict]]:
    """compare.json's content, both runs, and the compared objects (key, both rows, Δ), largest Δ first."""
    label_a, label_b = run_labels([Path(path_a), Path(path_b)])
    a, b = load_side(path_a, label_a), load_side(path_b, label_b)
    check_same_dataset(a, b)
    counted_a, counted_b = a.counted(), b.counted()
    common = [k for k in counted_a if k in counted_b]
    if not common:
        raise CompareError(f"no object was scored by both {a.path} and {b.path} "
                           f"({len(counted_a)} and {len(counted_b)} scored); compare runs over the same objects")
    all_a = {object_id(r): r for r in a.rows}
    all_b = {object_id(r): r for r in b.rows}
    only_a = [_named(k, _why_not(all_b.get(k), b)) for k in counted_a if k not in counted_b]
    only_b = [_named(k, _why_not(all_a.get(k), a)) for k in counted_b if k not in counted_a]
    buckets = a.buckets if a.buckets == b.buckets else BUCKETS
    options = {"tie": tie, "seed": seed, "resamples": resamples}

    def block(keys: list, value: str) -> dict:
        stats = differences([counted_a[k][value] for k in keys], [counted_b[k][value] for k in keys], **options)
        stats["buckets"] = []
        for max_rate in buckets:
            members = [k for k in keys if counted_a[k]["occlusion_rate"] <= max_rate + TOLERANCE]
            stats["buckets"].append({"max_occlusion": max_rate, "label": bucket_label(max_rate),
                                     **differences([counted_a[k][value] for k in members],
                                                   [counted_b[k][value] for k in members], **options)})
        return stats

    with_occ = [k for k in common if counted_a[k].get("iou_occ") is not None
                and counted_b[k].get("iou_occ") is not None]
    recorded = any("iou_occ" in r for r in counted_a.values()) and any("iou_occ" in r for r in counted_b.values())
    result = {
        "run_a": str(a.path),
        "run_b": str(b.path),
        "label_a": a.label,
        "label_b": b.label,
        "dataset": dataset_identity(a),
        **block(common, "iou"),
        "miou_occ": block(with_occ, "iou_occ") if recorded else None,
        "only_a": {"count": len(only_a), "objects": only_a},
        "only_b": {"count": len(only_b), "objects": only_b},
        "include_unoccluded": {"a": a.include_unoccluded, "b": b.include_unoccluded},
        "tie": tie,
        "bootstrap": {"method": METHOD, "resamples": resamples, "seed": seed, "confidence": CONFIDENCE,
                      "over": "objects, paired (each resample draws objects; an object brings both IoUs)"},
    }
    pairs = [{"key": k, "a": counted_a[k], "b": counted_b[k], "delta": counted_b[k]["iou"] - counted_a[k]["iou"]}
             for k in common]
    pairs.sort(key=lambda p: (-p["delta"], p["key"]))
    return result, a, b, pairs


def _named(key: tuple[str, str, str], why: str) -> dict:
    return {"dataset": key[0], "image_id": key[1], "object_id": key[2], "why": why}


# -- the gallery ---------------------------------------------------------------------------------------

def gallery_choice(pairs: list[dict], count: int, tie: float) -> list[tuple[str, int, dict]]:
    """("win" | "loss", rank, pair) for the ``count`` largest wins and the ``count`` largest losses."""
    wins = [p for p in pairs if p["delta"] > tie][:count]
    losses = sorted((p for p in pairs if p["delta"] < -tie), key=lambda p: (p["delta"], p["key"]))[:count]
    return [("win", i, p) for i, p in enumerate(wins, 1)] + [("loss", i, p) for i, p in enumerate(losses, 1)]


def _missing_tile(shape: tuple[int, int], text: str) -> np.ndarray:
    tile = np.full((*shape, 3), 96, np.uint8)
    cv2.putText(tile, text, (4, shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, max(0.4, shape[0] / 600), (255, 255, 255),
                1, cv2.LINE_AA)
    return tile


def draw_gallery(a: RunSide, b: RunSide, chosen: list[tuple[str, int, dict]],
                 folder: Path) -> tuple[list[dict], list[str]]:
    """A panel per chosen object (image, V, run A's Â, run B's Â, the ground truth), the image and masks
    from run A's dataset (rebuilt from its config) and each run's saved masks (``masks/``). Returns what was
    drawn and notes on what could not be (each a line; nothing here stops the comparison)."""
    if not chosen:
        return [], []
    section = a.config.get("dataset")
    if not isinstance(section, dict):
        return [], [f"no gallery: {a.path} has no .hydra/ config to rebuild its dataset from"]
    have_masks = [side for side in (a, b) if (side.path / MASKS_DIR).is_dir()]
    if not have_masks:
        return [], [f"no gallery: neither run saved its masks; run them with output.save_masks=true "
                    f"(they are written to {MASKS_DIR}/)"]
    notes = [f"{side.label} saved no masks (output.save_masks=true writes them): its tiles are blank"
             for side in (a, b) if side not in have_masks]
    try:
        dataset = build(OmegaConf.create({**section, "limit": None}), "dataset")
    except AmodalError as err:
        return [], [f"no gallery: the dataset of {a.path} cannot be opened here ({err})"]
    drawn = []
    for kind, rank, pair in chosen:
        _, image_id, object_id = pair["key"]
        key = ObjectKey(image_id, object_id)
        try:
            sample = dataset.load(key)
            tiles = [("image", sample.image), ("visible V", overlay(sample.image, sample.visible, COLOURS["visible"]))]
            for side, row in ((a, pair["a"]), (b, pair["b"])):
                path = mask_path(side.path / MASKS_DIR, key)
                title = f"{'A' if side is a else 'B'} {side.label}: IoU {100 * row['iou']:.1f}"
                if path.is_file():
                    tiles.append((title, overlay(sample.image, read_mask(path, sample.size), COLOURS["prediction"])))
                else:
                    tiles.append((title, _missing_tile(sample.size, "mask not saved")))
            if sample.amodal is not None:
                tiles.append(("ground truth", overlay(sample.image, sample.amodal, COLOURS["amodal"])))
        except AmodalError as err:
            notes.append(f"{image_id}/{object_id}: not drawn ({err})")
            continue
        name = f"{kind}_{rank:02d}__{safe_name(image_id)}__{safe_name(object_id)}.png"
        save_png(folder / name, tile_row(tiles))
        drawn.append({"file": f"{GALLERY_DIR}/{name}", "kind": kind, "rank": rank, "image_id": image_id,
                      "object_id": object_id, "iou_a": pair["a"]["iou"], "iou_b": pair["b"]["iou"],
                      "delta": pair["delta"]})
    return drawn, notes


# -- compare.md ----------------------------------------------------------------------------------------

def _points(value: float | None, sign: bool = False) -> str:
    """A fraction in IoU points (%), one decimal; a signed difference with ``sign``."""
    if value is None:
        return "–"
    return f"{100 * value:+.2f}" if sign else f"{100 * value:.1f}"


def _interval(ci) -> str:
    return "–" if ci is None else f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"


def verdict(stats: dict) -> str:
    """What the interval says, in words."""
    ci = stats["ci95"]
    if ci is None:
        return "too few objects for an interval"
    if ci[0] > 0:
        return "B is better: the 95 % interval lies above 0"
    if ci[1] < 0:
        return "A is better: the 95 % interval lies below 0"
    return "no difference shown: the 95 % interval holds 0"


def _table(stats: dict) -> str:
    header = ["objects", "n", "A", "B", "ΔIoU (B − A)", "95 % CI", "wins", "losses", "ties"]
    rows = [[label, str(s["n"]), _points(s["mean_a"]), _points(s["mean_b"]), _points(s["mean_delta"], sign=True),
             _interval(s["ci95"]), str(s["wins"]), str(s["losses"]), str(s["ties"])]
            for label, s in [("all", stats), *((b["label"], b) for b in stats["buckets"])]]
    return to_markdown(header, rows)


def summary_markdown(result: dict, notes: Sequence[str] = ()) -> str:
    boot = result["bootstrap"]
    text = [f"# {result['label_b']} (B) against {result['label_a']} (A)", "",
            f"- A: `{result['run_a']}`", f"- B: `{result['run_b']}`",
            "- dataset: " + ", ".join(f"{k}={v}" for k, v in result["dataset"].items()), "",
            f"On the {result['n']} objects both runs scored, mIoU {_points(result['mean_a'])} (A) and "
            f"{_points(result['mean_b'])} (B): ΔIoU {_points(result['mean_delta'], sign=True)} points, 95 % CI "
            f"{_interval(result['ci95'])}; {verdict(result)}. B wins {result['wins']}, loses {result['losses']}, "
            f"ties {result['ties']} (|Δ| ≤ {result['tie']:g}).", "",
            "IoU in %, ΔIoU in points; buckets hold the objects at most that much hidden (A's occlusion rate).", "",
            _table(result), ""]
    occ = result["miou_occ"]
    text += ["## mIoU_occ: the hidden part, IoU(Â \\ V, A \\ V)", ""]
    if occ is None:
        text += ["The rows of one run or both hold no `iou_occ` (written before it was recorded).", ""]
    else:
        text += [f"On the {occ['n']} objects with a hidden part scored by both: ΔIoU_occ "
                 f"{_points(occ['mean_delta'], sign=True)} points, 95 % CI {_interval(occ['ci95'])}; {verdict(occ)}.",
                 "", _table(occ), ""]
    text += ["## Objects only one run scored", ""]
    for side in ("a", "b"):
        only = result[f"only_{side}"]
        text.append(f"- only {side.upper()} ({result[f'label_{side}']}): {only['count']}")
        text += [f"  - {o['dataset']} {o['image_id']}/{o['object_id']}: {o['why']}" for o in only["objects"][:NAMED]]
        if only["count"] > NAMED:
            text.append(f"  - … and {only['count'] - NAMED} more (all in {COMPARE_FILE})")
    text.append("")
    if result.get("gallery"):
        text += ["## Gallery: the largest wins and losses of B", "",
                 "Each panel: image, V, A's Â, B's Â, the ground truth.", ""]
        text += [f"- {g['kind']} {g['rank']}: {g['image_id']}/{g['object_id']}, IoU {_points(g['iou_a'])} → "
                 f"{_points(g['iou_b'])} ({_points(g['delta'], sign=True)}): [{g['file']}]({g['file']})"
                 for g in result["gallery"]]
        text.append("")
    if notes:
        text += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    text += [f"Intervals: {boot['method']}, {boot['resamples']} resamples of the objects (paired), seed "
             f"{boot['seed']}; a tie is |Δ| ≤ {result['tie']:g}.", ""]
    return "\n".join(text)


def write_comparison(path_a: str | Path, path_b: str | Path, out: str | Path, *, seed: int = SEED,
                     resamples: int = RESAMPLES, tie: float = TIE, gallery: int = GALLERY) -> tuple[dict, list[str]]:
    """compare.json, compare.md and gallery/ in ``out``; returns compare.json's content and the notes."""
    result, a, b, pairs = compare_runs(path_a, path_b, seed=seed, resamples=resamples, tie=tie)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*(out / GALLERY_DIR).glob("win_*.png"), *(out / GALLERY_DIR).glob("loss_*.png")]:
        stale.unlink()  # panels of an earlier comparison into this folder would read as this one's
    drawn, notes = draw_gallery(a, b, gallery_choice(pairs, gallery, tie), out / GALLERY_DIR)
    if a.buckets != b.buckets:
        notes.insert(0, f"the runs' eval.buckets differ ({list(a.buckets)} and {list(b.buckets)}): the buckets "
                        f"here are the default ones, {list(BUCKETS)}")
    result["gallery"] = drawn
    result["notes"] = notes
    write_atomic(out / COMPARE_FILE, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    write_atomic(out / SUMMARY_FILE, summary_markdown(result, notes))
    return result, notes
