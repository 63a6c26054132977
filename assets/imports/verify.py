"""Verification of imported rows in the sandbox: the teacher writes assert tests for the row's problem and its own
solution (the oss_tests prompt OSS-Instruct uses), the solution runs against them, a failing run's output goes back
for the tests alone to be corrected (import_tests_repair prompt), and the questioner's gates apply (the tests fail on
the trivial mutant; a salted rerun passes). The solution is never changed: a row whose code fails keeps its reason in
import_rejects.

    verifier = ImportVerifier(config, teacher_client, runner)
    kept = verifier.verify(items)            # ImportItem; verifier.rejected holds (item, reason, detail)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from assets.generate.test_writing import TestedItem, TestWriting
from assets.prompts import load_prompt
from resources.llm import TeacherClient
from resources.verdict_cache import CachedRunner


@dataclass(kw_only=True)
class ImportItem(TestedItem):
    row_key: str  # the imported row's dialogue_id

    @property
    def key(self) -> str:
        return self.row_key


class ImportVerifier(TestWriting):
    repair_solution = False  # the imported solution is under test: a repair may change the tests only

    def __init__(self, config, client: TeacherClient, runner: CachedRunner) -> None:
        self.config, self.client, self.runner = config, client, runner
        self.tests_prompt = load_prompt("oss_tests", config.prompt_version)
        self.repair_prompt = load_prompt("import_tests_repair", config.repair_prompt_version)
        self.format_prompt = load_prompt("format_repair", config.repair_prompt_version)
        self.versions = "+".join(p.version for p in (self.tests_prompt, self.repair_prompt, self.format_prompt))
        self.counts: Counter = Counter()
        self.rejected: list[tuple[ImportItem, str, str]] = []

    def reject(self, item: ImportItem, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        self.rejected.append((item, reason, detail))

    def verify(self, items: list[ImportItem]) -> list[ImportItem]:
        """The items whose solution passes tests written for it, after the repairs and the gates."""
        return self._gate(self._run_and_repair(self._ask_tests(items)))
