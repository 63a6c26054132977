"""The stored-table checks (assets/checks/registry.py) as Dagster asset checks: each runs after its asset in the
same run, on the run's partition, reads the stored file, and shows in the asset's Checks tab. `check_stored` runs
the same checks on demand (`crucible check`) as runs of a checks-only job, one per partition, so their results are
recorded and shown exactly like those of a materialization's run."""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.


from collections import defaultdict

import dagster as dg

from assets.checks.registry import CHECKS, CheckLine, StoredCheck, checks_for, evaluate
from assets.checks.stored import CheckInput
from assets.partitions import add_seed_source
from resources.home import Home
from resources.store import table_partitions

CHECK_JOB = "check"
SAMPLE = 16  # rows a re-running check takes by default


def _definition(check: StoredCheck, partitions_def: dg.PartitionsDefinition | None) -> dg.AssetChecksDefinition:
    resources = {"io_manager", "sandbox"} if check.needs_sandbox else {"io_manager"}
    config = {"sample": dg.Field(int, default_value=SAMPLE, description="Rows re-run (0: every row).")} \
        if check.needs_sandbox else None

    @dg.asset_check(asset=check.asset, name=check.name, description=check.description, blocking=check.blocking,
                    partitions_def=partitions_def, required_resource_keys=resources, config_schema=config)
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        partition = context.partition_key if partitions_def is not None else None
        pool, sample = None, SAMPLE
        if check.needs_sandbox:
            pool, sample = context.resources.sandbox.pool, context.op_execution_context.op_config["sample"]
        line = evaluate(check, CheckInput(context.resources.io_manager.paths, partition, context.instance, pool,
                                          sample))
        return dg.AssetCheckResult(passed=line.status in ("PASS", "SKIP"), severity=check.severity,
                                   description=line.problem or None,
                                   metadata={"status": line.status, "first_problem": line.problem,
                                             **{k: v for k, v in line.metadata.items() if v is not None}})

    return _check


def stored_checks(assets: list[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """One Dagster asset check per stored check, partitioned like the asset it checks."""
    partitions = {key.to_user_string(): asset.partitions_def for asset in assets for key in asset.keys}
    return [_definition(check, partitions[check.asset]) for check in CHECKS if check.asset in partitions]


def _line(evaluation: dg.AssetCheckEvaluation, partition: str | None) -> CheckLine:
    status = evaluation.metadata.get("status")
    status = status.value if status is not None else ("PASS" if evaluation.passed else "FAIL")
    return CheckLine(status, evaluation.check_name, evaluation.asset_key.to_user_string(), partition,
                     evaluation.description or "", evaluation.severity, {})


def check_stored(defs: dg.Definitions, home: Home, asset: str | None = None, partition: str | None = None,
                 sample: int = SAMPLE, resources: dict | None = None,
                 instance: dg.DagsterInstance | None = None) -> list[CheckLine]:
    """`crucible check`: every stored check of `asset` (all when None) on `partition` (every stored one when None),
    as runs of a checks-only job `check` in the home's instance (one per partition). `resources` override the
    definitions' (e.g. another sandbox backend). ValueError for an unknown asset."""
    from assets.runs import console_logger, rebound
    from resources.dagster_home import persistent_instance

    wanted = checks_for(asset)
    instance = instance or persistent_instance(home)
    partitions_of = {key.to_user_string(): a.partitions_def for a in defs.assets for key in a.keys}
    groups: dict[int, list[StoredCheck]] = defaultdict(list)
    for check in wanted:
        groups[id(partitions_of[check.asset])].append(check)
    lines: list[CheckLine] = []
    for checks in groups.values():
        partitions_def = partitions_of[checks[0].asset]
        if partitions_def is None:
            names = [None]
        else:
            names = [partition] if partition else sorted({p for c in checks for p in table_partitions(c.asset, home)})
            if not names:
                lines += [CheckLine("SKIP", c.name, c.asset, "-", "no partition stored", c.severity, {})
                          for c in checks]
                continue
        keys = [dg.AssetCheckKey(dg.AssetKey(c.asset), c.name) for c in checks]
        job = dg.define_asset_job(CHECK_JOB, selection=dg.AssetSelection.checks(*keys), partitions_def=partitions_def,
                                  description="The stored-table checks of `crucible check`.")
        runnable = rebound(defs, resources or {}, jobs=[job])
        ops = {f"{c.asset}_{c.name}": {"config": {"sample": sample}} for c in checks if c.needs_sandbox}
        for name in names:
            if name is not None:  # stored before this instance knew the source (a copied table, a new instance)
                add_seed_source(instance, name.split("|", 1)[-1])
            # The partition goes in as the run's tag: a checks-only selection has no asset to infer it from.
            result = runnable.resolve_job_def(CHECK_JOB).execute_in_process(
                instance=instance, run_config={"ops": ops, "loggers": console_logger()}, raise_on_error=False,
                tags={"dagster/partition": name} if name else None)
            lines += [_line(e, name) for e in result.get_asset_check_evaluations()]
    return lines


def failed(lines: list[CheckLine]) -> bool:
    """An ERROR-severity check failed (WARN checks only report)."""
    return any(line.status == "FAIL" and line.severity == dg.AssetCheckSeverity.ERROR for line in lines)
