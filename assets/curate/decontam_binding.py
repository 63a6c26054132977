"""Binding a row's solution to a benchmark's tests, for the execution layer of decontamination.

A row's function has its own name, so for each top-level function whose arity fits the benchmark's entry point we
build one program: the benchmark's setup, the solution's definitions (its top-level side effects dropped), an
alias `entry_point = that_function`, then the benchmark's tests. Any of them passing in the sandbox means the row
solves the benchmark problem, whatever its wording.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass

from eval.benchmarks import BenchmarkItem, parse

# Top-level statements kept from a solution: definitions, imports and constants. Everything else (prints, input(),
# `if __name__ == "__main__":` blocks, the row's own asserts) would only add noise or stall the program.
_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
         ast.AnnAssign, ast.AugAssign)


@dataclass(frozen=True)
class Signature:
    name: str
    min_args: int  # positional parameters without defaults
    max_args: float  # positional parameters in all (inf with *args)

    def accepts(self, n: int) -> bool:
        return self.min_args <= n <= self.max_args


def _signature(fn: ast.FunctionDef) -> Signature:
    args = fn.args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    required_kw = sum(1 for d in args.kw_defaults if d is None)
    if required_kw:  # keyword-only parameters without defaults cannot be filled positionally
        return Signature(fn.name, 1 << 30, 0)
    return Signature(fn.name, required, float("inf") if args.vararg else positional)


@dataclass(frozen=True)
class ParsedSolution:
    code: str  # the solution without top-level side effects
    functions: tuple[Signature, ...]  # its top-level (non-async) functions


def parse_solution(solution: str | None) -> ParsedSolution | None:
    """None when there is nothing to run: no solution, a syntax error, or no top-level function."""
    if not solution or not solution.strip():
        return None
    try:
        tree = parse(solution)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    body = [n for n in tree.body if isinstance(n, _KEEP)]
    functions = tuple(_signature(n) for n in body if isinstance(n, ast.FunctionDef))
    if not functions:
        return None
    return ParsedSolution(ast.unparse(ast.Module(body=body, type_ignores=[])), functions)


def entry_arity(item: BenchmarkItem) -> int | None:
    """How many positional arguments the benchmark's tests pass to its entry point (from the canonical solution)."""
    try:
        tree = parse(item.solution)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == item.entry_point:
            return len(node.args.posonlyargs) + len(node.args.args)
    return None


@dataclass(frozen=True)
class Binding:
    """One way a solution's function can stand in for a benchmark's entry point."""

    label: str  # what reports show: the function, and how its arguments were adapted
    name: str  # the callable in `solution` that the entry point is aliased to
    solution: ParsedSolution  # the solution's definitions, plus the adapter when there is one


def can_bind(fn: Signature, arity: int | None) -> bool:
    """Whether `fn` can stand in for an entry point called with `arity` arguments: directly, or with the last
    argument dropped (see `bindings`)."""
    return arity is None or fn.accepts(arity) or (arity >= 2 and fn.accepts(arity - 1))


def bindings(solution: ParsedSolution, item: BenchmarkItem, arity: int | None,
             max_functions: int = 4) -> list[Binding]:
    """Every function of the solution that could stand in for the entry point, as called directly and, because a
    rewording may order or trim parameters differently, adapted: two arguments swapped, or the last argument
    dropped (MBPP often passes a list's length next to the list: `find_Max_Num(arr, n)`)."""
    fits = [f for f in solution.functions if can_bind(f, arity)]
    # A function named like the entry point goes first; then the solution's order (helpers usually come first,
    # so the last definitions are tried too when there are more than max_functions).
    fits.sort(key=lambda f: f.name != item.entry_point)
    if len(fits) > max_functions:
        fits = fits[:1] + fits[-(max_functions - 1):]
    out = []
    for fn in fits:
        if arity is None or fn.accepts(arity):
            out.append(Binding(fn.name, fn.name, solution))
        if arity == 2 and fn.accepts(2):
            adapter = f"__{fn.name}_swapped"
            out.append(Binding(f"{fn.name} (arguments swapped)", adapter, _adapted(
                solution, f"def {adapter}(a, b):\n    return {fn.name}(b, a)\n")))
        if arity is not None and arity >= 2 and not fn.accepts(arity) and fn.accepts(arity - 1):
            adapter = f"__{fn.name}_without_last"
            out.append(Binding(f"{fn.name} (last argument dropped)", adapter, _adapted(
                solution, f"def {adapter}(*args):\n    return {fn.name}(*args[:-1])\n")))
    return out


def _adapted(solution: ParsedSolution, adapter: str) -> ParsedSolution:
    return ParsedSolution(f"{solution.code}\n\n\n{adapter}", solution.functions)


def binding_programs(solution: ParsedSolution, item: BenchmarkItem, arity: int | None,
                     max_functions: int = 4) -> list[tuple[Binding, str]]:
    """(binding, program) for each binding: the program runs the benchmark's tests against it."""
    programs = []
    for binding in bindings(solution, item, arity, max_functions):
        alias = "" if binding.name == item.entry_point else f"\n{item.entry_point} = {binding.name}\n"
        programs.append((binding, item.check_program(binding.solution.code + alias)))
    return programs


# -- one program per row -----------------------------------------------------------------------------------------
# A row meets the benchmark's tests through up to top_k candidates times a few bindings (about 20 programs per row),
# and each program does little: the sandbox's per-program cost (a fork, a verdict and its cache entry) was most of
# the layer's time. So a row's programs first run together in one process, each in its own namespace under its own
# timer, reporting pass/fail on a line of its own. Whatever that run leaves undecided (the process killed for
# memory, a loop in C code that no timer interrupts, a program that closed stdout) runs again as a program of its
# own, so every decision is the one the separate program would give. Hand-written because the sandbox's runner
# executes one program per request, and the decision needs each binding's own outcome.
BATCH_MARK = "@@crucible-binding"

# The timer both generated programs below start with: SIGALRM raises _Slow, a BaseException so that the code under
# test cannot swallow it with `except Exception`, and records that it fired.
_TIMER = '''\
import signal

class _Slow(BaseException):
    pass

_fired = [False]

def _alarm(signum, frame):
    _fired[0] = True
    raise _Slow()

signal.signal(signal.SIGALRM, _alarm)
'''

_BATCH = _TIMER + '''\
import os
for _k, _src in enumerate({sources!r}):
    _fired[0] = False
    signal.setitimer(signal.ITIMER_REAL, {per_program_s})
    try:
        exec(compile(_src, "<binding %d>" % _k, "exec"), {{"__name__": "__main__"}})
        _ok = True
    except SystemExit as _exit:
        _ok = _exit.code in (None, 0)
    except BaseException:
        _ok = False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    _ok = _ok and not _fired[0]  # past its limit is a failure, even if the program caught the timer's exception
    os.write(1, ("\\n{mark} %d %s\\n" % (_k, "pass" if _ok else "fail")).encode())
'''


def batch_program(programs: list[str], per_program_s: float) -> str:
    """One script that runs every program of `programs` in turn, each in a fresh namespace and stopped after
    per_program_s, and prints `BATCH_MARK k pass|fail` after the k-th."""
    return _BATCH.format(sources=programs, per_program_s=per_program_s, mark=BATCH_MARK)


def batch_outcomes(stdout: str, n: int) -> list[bool | None]:
    """Per program of a batch, whether it passed; None for those the batch did not report (to run on their own)."""
    found: list[bool | None] = [None] * n
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == BATCH_MARK and parts[1].isdigit() and int(parts[1]) < n:
            found[int(parts[1])] = parts[2] == "pass"
    return found


# -- the agreement check ------------------------------------------------------------------------------------------
# Benchmark tests are few (MBPP has three asserts), so a different function can pass them by coincidence: a "mode"
# passes `smallest_num`'s tests when every test list has distinct values. A function that passed is therefore also
# run next to the canonical solution on perturbed copies of the tests' own arguments (reversed, first element
# dropped, last element repeated, integers one further from zero, floats times 1.5) and must agree on most of the
# inputs the canonical solution accepts (inputs on which it raises or runs past per_call_s are skipped). "Most",
# not all: perturbed inputs can leave the problem's domain, where a correct paraphrase and the canonical solution
# may differ (HumanEval/150's canonical solution calls 0 a prime).
MAX_INPUTS = 24

_AGREEMENT = _TIMER + '''\
import copy, json, math

def _call(fn, args):
    signal.setitimer(signal.ITIMER_REAL, {per_call_s})
    try:
        return fn(*copy.deepcopy(args))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)

def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
        except TypeError:
            return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b

_row = {{"__name__": "row"}}
exec(compile({row!r}, "<row>", "exec"), _row)
_ref = {{"__name__": "benchmark"}}
exec(compile({ref!r}, "<benchmark>", "exec"), _ref)
candidate, reference = _row[{fn!r}], _ref[{entry!r}]
compared = agreed = 0
for args in {inputs}:
    try:
        expected = _call(reference, args)
    except BaseException:  # the canonical solution rejects (or loops on) this input: not a comparison
        continue
    compared += 1
    try:
        agreed += _same(_call(candidate, args), expected)
    except BaseException:
        pass
print(json.dumps({{"compared": compared, "agreed": agreed}}))
'''


def call_arguments(item: BenchmarkItem) -> list[tuple]:
    """The literal argument tuples the tests pass to the entry point (calls with computed arguments are skipped)."""
    try:
        tree = parse(item.test)
    except SyntaxError:
        return []
    names = {item.entry_point, "candidate"}
    found, seen = [], set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names
                and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)):
            try:
                args = tuple(ast.literal_eval(a) for a in node.args)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            key = repr(args)
            if key not in seen:
                seen.add(key)
                found.append(args)
    return found


def _mutations(value) -> list:
    """Small changes that stay inside the input's likely domain: never an empty sequence, never a sign change."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value + 1 if value >= 0 else value - 1]
    if isinstance(value, float):
        return [value * 1.5]
    if isinstance(value, (list, tuple, str)) and len(value) > 0:
        out = [value[::-1], value + value[-1:]]
        if len(value) > 1:
            out.append(value[1:])
        return [v for v in out if v != value] or out[1:]
    return []


def _with_lengths(args: tuple, i: int, new) -> tuple:
    """args with args[i] replaced by `new`, and any argument that was args[i]'s length (MBPP's `f(arr, n)` with
    n == len(arr)) updated to the new length, so the call stays as consistent as the tests' own calls."""
    old = args[i]
    out = list(args)
    out[i] = new
    if isinstance(old, (list, tuple, str)):
        for j, a in enumerate(args):
            if j != i and type(a) is int and a == len(old):
                out[j] = len(new)
    return tuple(out)


def perturbed_inputs(item: BenchmarkItem, limit: int = MAX_INPUTS) -> list[tuple]:
    """Perturbed copies of the tests' argument tuples, one argument changed at a time, interleaved across calls."""
    per_call = []
    for args in call_arguments(item):
        per_call.append([_with_lengths(args, i, m) for i, a in enumerate(args) for m in _mutations(a)])
    out, seen = [], set()
    for round_ in range(max((len(v) for v in per_call), default=0)):
        for variants in per_call:
            if round_ < len(variants) and repr(variants[round_]) not in seen:
                seen.add(repr(variants[round_]))
                out.append(variants[round_])
    return out[:limit]


def agreement_program(solution: ParsedSolution, function: str, item: BenchmarkItem,
                      inputs: list[tuple], per_call_s: float = 0.5) -> str:
    """A script that prints {"compared", "agreed"}: on how many inputs the canonical solution returned, and on how
    many of those `function` returned the same. Each side runs in its own namespace, so neither can redefine the
    other's helpers."""
    row = f"{item.setup}\n\n{solution.code}" if item.setup else solution.code
    ref = f"{item.setup}\n\n{item.solution}" if item.setup else item.solution
    return _AGREEMENT.format(row=row, ref=ref, fn=function, entry=item.entry_point, inputs=repr(inputs),
                             per_call_s=per_call_s)


def agreement(stdout: str) -> tuple[int, int] | None:
    """(compared, agreed) from an agreement program's output; None when it printed nothing usable."""
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
        return int(result["compared"]), int(result["agreed"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None
