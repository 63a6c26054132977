"""The read-back check every stored table gets: the Parquet file's schema is the declared one (assets/schemas.py
`TABLES`), its row count is the one its materialization recorded, the row key is unique, required columns hold no
nulls, and `messages` are well formed (roles in a valid order; a verified dialogue's last assistant turn holds
code, followed at most by AutoCoder's unit-test turn)."""

from __future__ import annotations

import re

import polars as pl

from assets.checks.stored import CheckInput, Outcome, latest_materialization, metadata_value, stored_table
from assets.generate.config import UNIT_TESTS_TURN
from assets.schemas import TABLES, Table, schema_problems, unverified_imports

ROLES = ("system", "user", "assistant", "tool")
# Code in a turn: a fenced block, or a line that starts a definition or an import.
_CODE = re.compile(r"```|^\s*(def|class|import|from\s+\S+\s+import)\b", re.MULTILINE)


def message_problems(messages: list[dict] | None, dialogue: bool) -> list[str]:
    """What is wrong with one conversation (empty when nothing is): unknown roles, a system turn after the start,
    a first turn that is not the user's, two assistant turns in a row, a tool turn not answering an assistant;
    for a verified dialogue also: no assistant turn, a last assistant turn without code, or anything after it but
    the unit-test turn."""
    if not messages:
        return ["no messages"]
    problems = []
    roles = [m.get("role") for m in messages]
    unknown = sorted({r for r in roles if r not in ROLES}, key=str)
    if unknown:
        problems.append(f"unknown role(s) {unknown}")
    body = roles[1:] if roles[0] == "system" else roles
    if "system" in body:
        problems.append(f"a system turn at position {roles.index('system', 1 if roles[0] == 'system' else 0)}")
    if body and body[0] != "user":
        problems.append(f"the conversation starts with {body[0]!r}, not 'user'")
    for i, (before, role) in enumerate(zip(roles, roles[1:]), start=1):
        if role == "assistant" and before == "assistant":
            problems.append(f"two assistant turns in a row at {i}")
        if role == "tool" and before != "assistant":
            problems.append(f"a tool turn at {i} does not follow an assistant turn")
    if any(not isinstance(m.get("content"), str) or not m["content"].strip() for m in messages):
        problems.append("an empty turn")
    if dialogue:
        answers = [i for i, r in enumerate(roles) if r == "assistant"]
        if not answers:
            return problems + ["no assistant turn"]
        last = answers[-1]
        if not _CODE.search(messages[last].get("content") or ""):
            problems.append(f"the final assistant turn ({last}) holds no code")
        after = messages[last + 1:]
        if after and not (len(after) == 1 and (after[0].get("content") or "").startswith(UNIT_TESTS_TURN)):
            problems.append(f"{len(after)} turn(s) after the final assistant turn")
    return problems


def _id_of(row: dict, table: Table) -> str:
    return ", ".join(f"{k}={row.get(k)}" for k in table.key) if table.key else "a row"


def table_problems(df: pl.DataFrame, table: Table) -> list[str]:
    """Every way `df` falls short of `table`'s contract, each naming a row where one is at fault."""
    problems = schema_problems(df, table.schema)
    present_key = [k for k in table.key if k in df.columns]
    if present_key and len(present_key) == len(table.key):
        repeated = df.filter(df.select(present_key).is_duplicated())
        if len(repeated):
            problems.append(f"{len(repeated)} rows share an id, e.g. {_id_of(repeated.row(0, named=True), table)}")
    unverified = unverified_imports(df) if table.verified else pl.Series([False] * len(df), dtype=pl.Boolean)
    verified_rows = df.filter(~unverified)
    for column, rows in [(c, df) for c in table.required] + [(c, verified_rows) for c in table.verified]:
        if column in rows.columns and rows[column].null_count():
            row = rows.filter(pl.col(column).is_null()).row(0, named=True)
            problems.append(f"{rows[column].null_count()} null {column}, e.g. {_id_of(row, table)}")
    # Reject tables keep whatever conversation there was (possibly none); only tables that require one are held
    # to its shape, and an unverified imported answer may be prose.
    if "messages" in table.required and "messages" in df.columns \
            and df.schema["messages"] == table.schema["messages"]:
        rows = df.select([*present_key, "messages"]).with_columns(unverified.alias("_unverified"))
        for row in rows.iter_rows(named=True):
            found = message_problems(row["messages"], table.dialogue and not row["_unverified"])
            if found:
                problems.append(f"{_id_of(row, table)}: messages: {'; '.join(found)}")
    return problems


def stored_table_valid(asset: str, check: CheckInput) -> Outcome:
    """The check: the stored file against its contract and against its materialization's row count."""
    table = TABLES[asset]
    df = stored_table(asset, check)
    problems = table_problems(df, table)
    recorded = metadata_value(latest_materialization(asset, check), "dagster/row_count", "rows")
    if recorded is not None and int(recorded) != len(df):
        problems.insert(0, f"the stored file has {len(df)} rows, its materialization recorded {recorded}")
    return Outcome.from_problems(problems, rows=len(df), materialized_rows=recorded if recorded is not None else -1)
