"""The frozen config of each generation method, and the method_dialogues asset's config that holds them. Only the
running method's own config (and the shared fields it reads) goes into its rows' fingerprint."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from assets.generate.config import DialoguesConfig, ProblemsConfig

EVOL_STRATEGIES = ("add_constraint", "harder_edge_cases", "complexity_requirement", "deeper_reasoning",
                   "concretize_types")


class OssInstructConfig(dg.Config):
    """Magicoder's OSS-Instruct: a window of real code -> problem + solution; tests in a second turn."""

    max_window_lines: int = Field(default=15, ge=1, description="Windows are 1..N consecutive lines.")
    windows_per_file: int = Field(default=1, ge=1, description="Windows drawn from each seed file.")
    temperature: float = Field(default=0.2, description="Teacher sampling temperature.")
    max_tokens: int = Field(default=1024, description="Reply length cap, tokens.")
    repair_turns: int = Field(default=1, ge=0, description="Repairs of a solution that fails its tests, each shown "
                                                          "the execution output, before the window is rejected.")
    min_asserts: int = Field(default=3, description="The tests need at least this many assert statements.")
    language: str = Field(default="python", description="The language of the problems, solutions and tests: python, "
                                                         "cpp, c, javascript, typescript, rust, go, java, php or bash "
                                                         "(assets/generate/code_languages.py). Windows come from the "
                                                         "seeds of that language.")
    prompt_version: int = Field(default=1, description="assets/prompts/oss_window.v<N>.txt and oss_tests.v<N>.txt "
                                                       "(oss_window_<language>, oss_tests_<language> beyond Python)")
    repair_prompt_version: int = Field(default=1, description="assets/prompts/problem_repair.v<N>.txt: the turn that "
                                                              "shows a failing run's output.")
    format_repair: bool = Field(default=True, description="Tests that break a rule the gates need (too few asserts, "
                                                         "no tests block, none that call the function) get one more "
                                                         "turn told what is wrong (format_repair.v<N>.txt, N = "
                                                         "repair_prompt_version) before the window is rejected.")
    seed: int | None = Field(default=0, description="Sampling seed, and the seed of the window draw.")


class LibraryInstructConfig(ProblemsConfig):
    """Problems that need a popular library installed in the sandbox, seeded from that library's own code."""

    libraries: list[str] = Field(default=["numpy"], description="Libraries whose source seeds the problems; each "
                                                                 "must import inside the sandbox.")


class EvolInstructConfig(ProblemsConfig):
    """Evol-Instruct: a verified problem made harder in one of the named ways (chosen per parent, seeded)."""

    strategies: list[str] = Field(default=list(EVOL_STRATEGIES), description="Evolutions to draw from: "
                                                                             + ", ".join(EVOL_STRATEGIES))


class SimilarProblemConfig(ProblemsConfig):
    """A new problem close to a verified one, with its own solution and tests."""


class FollowUpConfig(ProblemsConfig):
    """A further request on a verified dialogue, with its own reference and tests."""


class InteractionConfig(DialoguesConfig):
    """Code-Feedback's interaction simulation: execution results plus a simulated user's feedback."""

    feedback_mode: str = Field(default="human_sim", description="human_sim (the default here) or execution.")


class CodeCorrectionConfig(dg.Config):
    """A verified solution with a bug its tests catch; the model diagnoses and fixes it."""

    bug_source: str = Field(default="mutation", description="mutation: Crucible mutates the code (off-by-one, "
                                                            "swapped operands, wrong comparison, dropped branch) "
                                                            "until the tests fail; teacher: the teacher writes the "
                                                            "bug; mutation_then_teacher: the teacher when no "
                                                            "mutation is caught.")
    max_mutants: int = Field(default=24, ge=1, description="Mutants of a solution run with its tests, at most, in "
                                                          "the seeded order, before the parent counts as having "
                                                          "no caught mutation.")
    mutant_timeout_s: float | None = Field(default=3.0, gt=0, description="Wall-clock limit of a mutant's run, "
                                                                         "seconds: a mutant that times out is "
                                                                         "never the bug, so a short limit frees "
                                                                         "the sandbox sooner; empty: the "
                                                                         "sandbox's own.")
    max_turns: int = Field(default=2, ge=1, description="Fix attempts, the first included; later ones see the "
                                                        "failing fix's execution output.")
    temperature: float = Field(default=0.2, description="Sampling temperature of the fix and of a teacher's bug.")
    max_tokens: int = Field(default=1024, description="Reply length cap, tokens.")
    prompt_version: int = Field(default=1, description="assets/prompts/code_correction.v<N>.txt")
    bug_prompt_version: int = Field(default=1, description="assets/prompts/bug_writer.v<N>.txt (bug_source teacher "
                                                           "or mutation_then_teacher).")
    seed: int | None = Field(default=0, description="Sampling seed, and the seed that picks the mutation.")


class PackingConfig(dg.Config):
    """Code-Feedback's single-turn packing: similar single-turn dialogues joined into one conversation."""

    min_similarity: float = Field(default=0.35, description="Cosine similarity (instruction embeddings) every "
                                                            "member must have with the group's first problem.")
    max_group: int = Field(default=3, ge=2, description="Problems per packed dialogue, at most.")
    seed: int = Field(default=0, description="Seed of the order in which groups are formed.")


class MethodDialoguesConfig(dg.Config):
    """method_dialogues: which parents a method starts from, how many, and each method's own settings."""

    max_items: int | None = Field(default=None, description="Use at most this many seeds or parents (in id order); "
                                                            "empty: all.")
    parent_methods: list[str] = Field(default=["function_instruct"], description="Methods whose verified rows of "
                                                                                 "the same source are parents of "
                                                                                 "the derived methods.")
    difficulty_samples: int = Field(default=3, ge=0, description="Sampled programmer answers per kept row whose pass "
                                                                 "share labels it easy / medium / hard; 0: none.")
    dialogues: DialoguesConfig = Field(default=DialoguesConfig(), description="The programmer's dialogue loop for "
                                                                              "problems that derived methods write.")
    oss_instruct: OssInstructConfig = Field(default=OssInstructConfig())
    library_instruct: LibraryInstructConfig = Field(default=LibraryInstructConfig())
    evol_instruct: EvolInstructConfig = Field(default=EvolInstructConfig())
    similar_problem: SimilarProblemConfig = Field(default=SimilarProblemConfig())
    follow_up: FollowUpConfig = Field(default=FollowUpConfig())
    interaction_simulation: InteractionConfig = Field(default=InteractionConfig())
    code_correction: CodeCorrectionConfig = Field(default=CodeCorrectionConfig())
    single_turn_packing: PackingConfig = Field(default=PackingConfig())
