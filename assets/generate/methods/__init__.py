"""The generation methods of the three systems Crucible follows, by name. `method` is a column on every generated
row, part of the config fingerprint, and a dimension of the `method_dialogues` asset's partitions.

Each method other than `function_instruct` (the seed -> problem -> dialogue path of oss_instruct_problems and
verified_dialogues) lives in a module of this package with one entry point, `run(inputs, config, ctx)`, taking a
`MethodInputs` and returning a `MethodResult` (assets/generate/methods/base.py).
"""

from __future__ import annotations

from dataclasses import dataclass

# What a method starts from: the source's seeds, or what earlier materializations of the source verified.
SEEDS, PROBLEMS, DIALOGUES = "seeds", "problems", "dialogues"


@dataclass(frozen=True)
class Method:
    name: str
    system: str  # the published system it follows
    starts_from: str  # SEEDS | PROBLEMS | DIALOGUES
    summary: str


_ALL = (
    Method("function_instruct", "Magicoder / AutoCoder", SEEDS,
           "a documented function of the source becomes a problem with tests, answered in an AIEV dialogue with "
           "execution feedback (the default; assets oss_instruct_problems and verified_dialogues)"),
    Method("oss_instruct", "Magicoder", SEEDS,
           "a random 1-15-line window of a source file becomes a problem and solution; the teacher then writes tests "
           "in a separate turn; a failing solution is repaired once with the execution output or rejected"),
    Method("library_instruct", "Magicoder", SEEDS,
           "a function of a popular library installed in the sandbox (numpy and the like) becomes a problem that "
           "uses that library, verified where the library is installed"),
    Method("evol_instruct", "MagicoderS (Evol-Instruct)", PROBLEMS,
           "a verified problem is evolved into a harder one (a constraint, edge cases, a complexity bound, more "
           "reasoning, concrete input types) with its own solution and tests"),
    Method("similar_problem", "Code-Feedback", PROBLEMS,
           "a new problem close to a verified one (LeetCode-style), with its own solution and tests"),
    Method("interaction_simulation", "Code-Feedback", PROBLEMS,
           "a verified problem answered with execution results and a simulated user's feedback after each failure"),
    Method("code_correction", "Code-Feedback", DIALOGUES,
           "a verified solution given a realistic bug its tests catch; the dialogue shows the buggy code and its real "
           "execution output, and the answer diagnoses and fixes it"),
    Method("follow_up", "Code-Feedback", DIALOGUES,
           "a further request on a verified dialogue (a new constraint, another input type, a faster algorithm) with "
           "new tests, appended as the next turns"),
    Method("single_turn_packing", "Code-Feedback", DIALOGUES,
           "2-3 verified single-turn dialogues close in embedding space joined into one multi-turn conversation"),
)
METHODS: dict[str, Method] = {m.name: m for m in _ALL}
DEFAULT_METHOD = "function_instruct"
# The methods made by the method_dialogues asset (one partition per method and source).
PARTITIONED_METHODS = tuple(name for name in METHODS if name != DEFAULT_METHOD)


class UnknownMethod(ValueError):
    pass


def require_method(name: str) -> Method:
    """The method called `name`, or a one-line error listing the known ones."""
    if name not in METHODS:
        raise UnknownMethod(f"unknown generation method {name!r}: use one of {', '.join(METHODS)} "
                            "(crucible generate --list-methods)")
    return METHODS[name]
