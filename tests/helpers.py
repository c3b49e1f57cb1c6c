"""What the tests share besides fixtures (those stay in ``conftest.py``): Hydra configs composed the way
``amodal-run`` composes them, the console scripts run as a user runs them (``cli``), small files and batches."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from PIL import Image

from amodal.config import config_dir

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def composed(overrides: list[str], run_dir: Path):
    """The config ``amodal-run <overrides>`` would run with, with Hydra's runtime facts set."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        cfg = compose("run", overrides=[*overrides, f"hydra.run.dir={run_dir}"], return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
            cfg.hydra.job.override_dirname = ",".join(overrides)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        try:
            yield cfg
        finally:
            GlobalHydra.instance().clear()


def cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None,
        pythonpath: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """Run a console script of this package as a user would (``amodal-run ...``); ``env`` adds variables,
    ``pythonpath`` (a user's own modules) goes before the package."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*pythonpath, REPO / "src"])), "HYDRA_FULL_ERROR": "0",
           **(env or {})}
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    Image.fromarray(array).save(path)


def condition_batch(size: int, seed: int, boxes: list[tuple[int, int, int, int]], seeds: list[int]):
    """An inpainter's batch: random condition images x in [−1, 1] (one per box), their areas M (the boxes,
    rows y0:y1 and columns x0:x1) and one seed per object."""
    rng = np.random.default_rng(seed)
    conditions = [rng.uniform(-1, 1, (size, size, 3)).astype(np.float32) for _ in boxes]
    areas = []
    for y0, y1, x0, x1 in boxes:
        area = np.zeros((size, size), bool)
        area[y0:y1, x0:x1] = True
        areas.append(area)
    return conditions, areas, seeds


def in_process(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None,
               pythonpath: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """``cli`` without a new interpreter: the console script's own entry point called with ``sys.argv`` set,
    its exit code, stdout and stderr returned the same way. What it changes process-wide is put back: the
    environment, the working folder, ``sys.path`` and the user's modules, Hydra's global state and the logging
    handlers it installs (run.log), Pillow's pixel limit, warning filters. The root logger starts as in a new
    interpreter (no handler, level WARNING), without pytest's: ``caplog`` sees nothing of the call.
    ``timeout`` is not enforced here.
    Keep ``cli`` where the installed command itself is what is tested (its quietness, faults injected at start)."""
    import io
    import logging
    import traceback
    import warnings
    from contextlib import redirect_stderr, redirect_stdout
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name=args[0])
    environment = {"HYDRA_FULL_ERROR": "0", **(env or {})}
    saved_env = {key: os.environ.get(key) for key in environment}
    saved_argv, saved_path, saved_cwd = sys.argv, list(sys.path), os.getcwd()
    saved_modules = set(sys.modules)
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    saved_loggers = [(logger, list(logger.handlers), logger.level, logger.propagate, logger.disabled)
                     for logger in loggers]
    saved_raise, saved_pixels = logging.raiseExceptions, Image.MAX_IMAGE_PIXELS
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    os.environ.update(environment)
    root = logging.getLogger()
    root.handlers[:], root.level = [], logging.WARNING  # as in a fresh interpreter: pytest's handlers are put
    # back afterwards; a warning logged where the command configures no logging reaches stderr by
    # logging's last resort, as the installed command prints it
    sys.argv = list(args)
    sys.path[:0] = map(str, pythonpath)
    GlobalHydra.instance().clear()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with warnings.catch_warnings(), redirect_stdout(out), redirect_stderr(err):
            _warn_as_python_does()
            try:
                code = script.load()()
            except SystemExit as exit_:
                code = exit_.code
            except BaseException:  # what the interpreter would do with it: the traceback, exit code 1
                traceback.print_exc()
                code = 1
            if isinstance(code, str):
                print(code, file=sys.stderr)
                code = 1
    finally:
        GlobalHydra.instance().clear()
        kept = {handler for _, handlers, *_ in saved_loggers for handler in handlers}
        for logger in [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]:
            for handler in set(logger.handlers) - kept:  # Hydra's, run.log among them
                logger.removeHandler(handler)
                handler.close()
        for logger, handlers, level, propagate, disabled in saved_loggers:
            logger.handlers[:], logger.level, logger.propagate, logger.disabled = handlers, level, propagate, disabled
        logging.raiseExceptions, Image.MAX_IMAGE_PIXELS = saved_raise, saved_pixels
        os.chdir(saved_cwd)
        sys.argv, sys.path[:] = saved_argv, saved_path
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name in set(sys.modules) - saved_modules:  # a user's own modules, imported from `pythonpath`
            path = getattr(sys.modules[name], "__file__", None) or ""
            if any(path.startswith(str(folder)) for folder in pythonpath):
                del sys.modules[name]
    return subprocess.CompletedProcess(list(args), code or 0, out.getvalue(), err.getvalue())


def _warn_as_python_does() -> None:
    """Inside ``warnings.catch_warnings()``: warnings printed on stderr under Python's default filters, as the
    installed command prints them, instead of recorded by pytest under pyproject's filters."""
    import warnings

    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.showwarning = warnings._showwarning_orig
    warnings._showwarnmsg_impl = lambda message: sys.stderr.write(warnings._formatwarnmsg(message))
