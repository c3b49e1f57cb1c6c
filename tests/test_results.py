import json

import pytest

from amodal.eval.results import ResultsLog, read_rows


def test_rows_survive_reopening_and_a_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultsLog(path) as log:
        log.append({"image_id": "a", "object_id": "1", "occlusion_rate": 0.2, "iou": 0.5})
        log.append({"image_id": "a", "object_id": "2", "occlusion_rate": 0.2, "iou": 0.7})
    with path.open("a") as handle:  # what kill -9 in the middle of a write leaves
        handle.write('{"image_id": "a", "object_id": "3", "io')
    with ResultsLog(path) as log:
        assert ("a", "1") in log and ("a", "2") in log and ("a", "3") not in log
        log.append({"image_id": "a", "object_id": "3", "occlusion_rate": 0.2, "iou": 0.9})
    rows = read_rows(path)
    assert [r["object_id"] for r in rows] == ["1", "2", "3"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_an_object_is_never_written_twice(tmp_path):
    with ResultsLog(tmp_path / "results.jsonl") as log:
        log.append({"image_id": "a", "object_id": "1"})
        with pytest.raises(ValueError):
            log.append({"image_id": "a", "object_id": "1"})


def test_a_line_that_is_not_a_row_is_named_by_its_number_unless_it_is_a_torn_end(tmp_path):
    from amodal.eval.results import ResultsError

    path = tmp_path / "results.jsonl"
    good = '{"image_id": "a", "object_id": "1", "occlusion_rate": 0.2}\n'
    null_id = "image_id is null, not a string or a number"
    for bad, why in (('{"image_id": "a", "obj\n', "not JSON"), ('[1, 2]\n', "not a JSON object"),
                     ('{"iou": 0.5}\n', null_id),
                     ('{"image_id": null, "object_id": "1", "occlusion_rate": 0.2}\n', null_id),
                     ('{"image_id": "a", "object_id": "2", "iou": 0.5}\n', "no occlusion_rate"),
                     ('{"image_id": "a", "object_id": "2", "occlusion_rate": "x"}\n',
                      'occlusion_rate is "x", not a number'),
                     ('[' * 100000 + '\n', "not JSON")):  # nested past Python's recursion limit
        path.write_text(good + bad + good.replace('"1"', '"2"'))
        with pytest.raises(ResultsError, match=f"^{path} line 2 is not a result row \\({why}\\): delete that line"):
            read_rows(path)
        path.write_text(good + bad.rstrip("\n"))  # the same, cut short at the end: what kill -9 leaves
        assert read_rows(path) == [json.loads(good)]


def test_objects_whose_ids_join_alike_are_two_objects_and_a_repeat_is_read_once(tmp_path):
    """The reader keeps one short string per object to find repeats: ("a1", "2") and ("a", "12") are not one."""
    rows = [{"image_id": "a1", "object_id": "2", "iou": 0.1}, {"image_id": "a", "object_id": "12", "iou": 0.2},
            {"image_id": "a", "object_id": "12", "iou": 0.9}]
    rows = [{**row, "occlusion_rate": 0.3} for row in rows]  # a scored row states it (results.row_problem)
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [r["iou"] for r in read_rows(path)] == [0.1, 0.2]
