"""What method_dialogues runs for one (method, source) partition: the inputs the method starts from, read from the
source's earlier materializations, and the call into the method's module.

    inputs = method_inputs("evol_instruct", "stdlib", config, home)   # MissingParents when there are none
    result = run_method("evol_instruct", inputs, config, ctx)
"""

from __future__ import annotations

from assets.generate.methods import (
    DEFAULT_METHOD,
    DIALOGUES,
    PROBLEMS,
    SEEDS,
    code_correction,
    derived,
    library_instruct,
    oss_instruct,
    packing,
    require_method,
)
from assets.generate.methods.base import MethodContext, MethodInputs, MethodResult
from assets.generate.methods.config import MethodDialoguesConfig
from assets.keys import METHOD_DIALOGUES, OSS_INSTRUCT_PROBLEMS, SEED_SNIPPETS, VERIFIED_DIALOGUES
from resources.home import Home
from resources.store import read_table, table_partitions


class MissingParents(ValueError):
    """A method that starts from earlier results found none; the message says what to run first."""


def _partition_rows(asset: str, partition: str, home: Home) -> list[dict]:
    if partition not in table_partitions(asset, home):
        return []
    return read_table(asset, [partition], home=home).to_dicts()


def parent_dialogues(source: str, methods: list[str], home: Home) -> list[dict]:
    """Verified dialogues of `methods` in the source's partitions, in dialogue id order."""
    rows: list[dict] = []
    for method in methods:
        require_method(method)
        if method == DEFAULT_METHOD:
            rows += _partition_rows(VERIFIED_DIALOGUES, source, home)
        else:
            rows += _partition_rows(METHOD_DIALOGUES, f"{method}|{source}", home)
    return sorted(rows, key=lambda r: r["dialogue_id"])


def method_inputs(method: str, source: str, config: MethodDialoguesConfig, home: Home) -> MethodInputs:
    """What `method` starts from in `source`, at most `config.max_items` of it (in id order)."""
    starts_from = require_method(method).starts_from
    first = f"crucible generate --source {source}"
    if starts_from == SEEDS:
        seeds = sorted(_partition_rows(SEED_SNIPPETS, source, home), key=lambda r: r["seed_id"])
        if not seeds:
            raise MissingParents(f"{method} on source {source!r} starts from its seeds and there are none: "
                                 f"materialize seed_snippets for {source!r} first ({first} does)")
        return MethodInputs(seeds=seeds[: config.max_items])
    if starts_from == PROBLEMS:
        problems = sorted(_partition_rows(OSS_INSTRUCT_PROBLEMS, source, home), key=lambda r: r["problem_id"])
        if not problems:
            raise MissingParents(f"{method} on source {source!r} starts from verified problems and there are none: "
                                 f"run `{first}` first")
        return MethodInputs(problems=problems[: config.max_items])
    assert starts_from == DIALOGUES
    dialogues = parent_dialogues(source, config.parent_methods, home)
    if not dialogues:
        raise MissingParents(f"{method} on source {source!r} starts from verified dialogues of "
                             f"{', '.join(config.parent_methods)} and there are none: run `{first}` first")
    return MethodInputs(dialogues=dialogues[: config.max_items])


def run_method(method: str, inputs: MethodInputs, config: MethodDialoguesConfig, ctx: MethodContext) -> MethodResult:
    """The method's module run on `inputs` with its own part of `config`."""
    own = getattr(config, method)
    if method == "oss_instruct":
        return oss_instruct.run(inputs, own, ctx)
    if method == "library_instruct":
        return library_instruct.run(inputs, own, ctx, config.dialogues)
    if method == "evol_instruct":
        return derived.evol_instruct(inputs, own, ctx, config.dialogues)
    if method == "similar_problem":
        return derived.similar_problem(inputs, own, ctx, config.dialogues)
    if method == "follow_up":
        return derived.follow_up(inputs, own, ctx, config.dialogues)
    if method == "interaction_simulation":
        return derived.interaction_simulation(inputs, own, ctx)
    if method == "code_correction":
        return code_correction.run(inputs, own, ctx)
    if method == "single_turn_packing":
        return packing.run(inputs, own, ctx)
    raise ValueError(f"method {method!r} is made by verified_dialogues, not method_dialogues")
