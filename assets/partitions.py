"""Partitions: the unit of scale is one seed source (a source tree or a dataset shard).

Every asset from seed_snippets down to decontaminated_dialogues is partitioned by `seed_source`; a new source adds a
partition (by hand in the UI, with `add_seed_source`, or by the sensor that watches the inbox) and nothing already
materialized is recomputed. The built-in source `stdlib` (the running Python's standard library) always exists.

A partition key is a source name, or `<source>~<round>` for a further round over the same source (the nightly
schedule adds `stdlib~20261123`): seeds already taken by the source's other partitions count as duplicates, so a
round draws fresh seeds.
"""

import warnings

import dagster as dg

from assets.generate.methods import PARTITIONED_METHODS

SEED_SOURCE = "seed_source"
ROUND_SEPARATOR = "~"
DEFAULT_SOURCE = "stdlib"

seed_source_partitions = dg.DynamicPartitionsDefinition(name=SEED_SOURCE)

# method_dialogues: one partition per (generation method, seed source), keyed "<method>|<source>".
METHOD = "method"
method_source_partitions = dg.MultiPartitionsDefinition({
    METHOD: dg.StaticPartitionsDefinition(list(PARTITIONED_METHODS)), SEED_SOURCE: seed_source_partitions})
# A per-source asset reads every method's partition of its source, and the other way round. (The mapping is marked
# beta; its warning would print on every command's stderr, where one-line errors are a promise.)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    BY_SOURCE = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=SEED_SOURCE)


def method_partition(method: str, source: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({METHOD: method, SEED_SOURCE: source})


def method_partitions_of(source: str, written: list[str]) -> list[str]:
    """The method_dialogues partitions of `source` among the `written` ones ("<method>|<source>")."""
    return [p for p in written if p.split("|", 1)[-1] == source]


def add_seed_source(instance: dg.DagsterInstance, *names: str) -> list[str]:
    """Register partitions for these sources (idempotent); returns the names that were new."""
    existing = set(instance.get_dynamic_partitions(SEED_SOURCE))
    new = [n for n in dict.fromkeys(names) if n not in existing]
    if new:
        instance.add_dynamic_partitions(SEED_SOURCE, new)
    return new


def source_of(partition_key: str) -> str:
    """The seed source a partition draws from: `stdlib~20261123` -> `stdlib`."""
    return partition_key.split(ROUND_SEPARATOR, 1)[0]


def round_partition(source: str, round_name: str) -> str:
    return f"{source}{ROUND_SEPARATOR}{round_name}"
