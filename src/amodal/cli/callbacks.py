"""Hydra callbacks of ``amodal-run``: at the end of a multirun, its report in ``<sweep dir>/report/``
(and a W&B summary run in the sweep's group when the runs logged to W&B)."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from amodal.eval.report import comparisons, log_summary_run, write_report
from amodal.eval.runs import find_runs, load_runs, without_shards
from amodal.loggers import sweep_group

log = logging.getLogger("amodal")


class MultirunReport(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            records, shards = without_shards(load_runs(find_runs([sweep_dir])))
            for line in shards:
                log.info(line)
            if not records:
                return
            tables = comparisons(records)
            for warning in (w for table in tables for w in table.messages()):
                log.warning(warning)
            files = write_report(records, sweep_dir / "report", tables, notes=shards)
            log.info("report: %s", files["markdown"])
            logger = config.get("logger") or {}
            if str(logger.get("_target_", "")).endswith("WandbLogger"):
                choices = dict(config.hydra.runtime.choices)
                log_summary_run(records, files, project=logger.get("project", "amodal"),
                                group=logger.get("group") or sweep_group(choices, sweep_dir),
                                mode=logger.get("mode", "offline"), entity=logger.get("entity"))
        except Exception as err:  # the runs are done and saved; a failed report must not hide that
            log.warning("the sweep's report failed (%s); run amodal-report %s", err, sweep_dir)
