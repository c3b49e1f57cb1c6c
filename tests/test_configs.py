"""Every option of every config group composes and builds: a broken config is caught here, not by a user."""

from pathlib import Path

import pytest

from amodal.config import build, config_dir
from tests.conftest import composed

GROUPS = sorted(p.name for p in config_dir().iterdir()
                if p.is_dir() and p.name not in ("experiment", "hydra"))
NEEDS = {  # (group, option): (the key to set, the fixture giving a folder, the sub-folder to point at)
    ("dataset", "folder"): ("dataset.root", "folder_dataset", "."),
    ("method", "external"): ("method.root", "folder_dataset", "amodal"),
}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_of_every_group_builds(group, option, tmp_path, request):
    overrides = [f"{group}={option}"]
    if (group, option) in NEEDS:
        key, fixture, sub = NEEDS[group, option]
        root: Path = request.getfixturevalue(fixture)
        overrides.append(f"{key}={root / sub}")
    with composed(overrides, tmp_path) as cfg:
        component = build(cfg[group], group)
    assert type(component).__module__.startswith("amodal.")


def test_config_groups_are_the_documented_contract():
    assert {"dataset", "method", "area", "logger"} <= set(GROUPS)
