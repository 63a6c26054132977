"""The seed stage's per-file work (decode, filter, parse, extract) spread over worker processes.

    for scan in scan_files(iter_files(spec), spec, config, workers=0):   # 0: one worker per usable core
        extraction.add(scan)

Parsing is most of the seed stage, and the one cost that grows with the size of the source rather than with the
number of seeds asked for: on a copy of six large packages (8,246 files) `ast.parse` took 44 of the 74 s the stage
spent. Files are independent, so a pool of processes scans them (threads would not help: parsing holds the GIL) and
the scans are merged in file order: seeds, rejects and the sample are exactly those of a scan in one process.

A source whose files fit in the first batch is scanned here, in this process: the pool's start is not worth it.
The workers come from a fork server that imported seed_extract once; forking the calling process itself (a Dagster
run with its threads) could copy a lock held by one of them.
"""

from __future__ import annotations

import itertools
import multiprocessing
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from assets.generate.seed_extract import ExtractConfig, FileScan, scan_file
from assets.generate.seed_sources import SourceFile, SourceSpec
from resources.server_process import usable_cpus

BATCH_FILES = 256  # files read and handed to the pool at a time; two batches at most are held in memory
CHUNK_FILES = 8  # files per task a worker takes


class SeedScanError(RuntimeError):
    """A worker of the seed scan died; the message says the likely causes and how to scan without workers."""


def _death_causes() -> str:
    """Why a worker may have died. Each one imports the program's main script as it starts (multiprocessing's rule
    for processes from a fork server or spawned), so a script whose top-level code calls Crucible runs again there,
    which multiprocessing refuses while the worker is starting (a package's __main__ is never imported again)."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if script and not (getattr(getattr(main, "__spec__", None), "name", None) or "").endswith("__main__"):
        return (f"if the main script {script} calls Crucible at its top level, each worker runs it again as it "
                f"starts: keep that code under `if __name__ == \"__main__\":`; otherwise it was killed (out of "
                "memory?)")
    return "it was killed (out of memory?)"


def scan_files(files: Iterable[SourceFile], spec: SourceSpec, config: ExtractConfig,
               workers: int = 0) -> Iterator[FileScan]:
    """Each file's scan, in the order of `files`, from `workers` processes (0: one per usable core; 1: here)."""
    if workers < 0:
        raise ValueError(f"seed scan workers must be >= 0 (0: one per core), got {workers}")
    files = iter(files)
    first = list(itertools.islice(files, BATCH_FILES))
    workers = workers or usable_cpus()
    if workers == 1 or len(first) < BATCH_FILES:
        for file in itertools.chain(first, files):
            yield scan_file(file, spec, config)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([scan_file.__module__])
    scan = partial(scan_file, spec=spec, config=config)
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            pending = pool.map(scan, first, chunksize=CHUNK_FILES)
            while True:
                # The next batch is read and queued before this one's results are taken, so the workers never wait.
                batch = list(itertools.islice(files, BATCH_FILES))
                following = pool.map(scan, batch, chunksize=CHUNK_FILES) if batch else None
                yield from pending
                if following is None:
                    return
                pending = following
    except BrokenProcessPool as exc:
        raise SeedScanError(f"seed scan of source {spec.name!r}: a worker process died; {_death_causes()}. Or scan "
                            "in one process: seed_snippets config workers: 1") from exc
