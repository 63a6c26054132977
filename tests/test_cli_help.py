"""The command line's self-description: help text and a shown default on every option of every command, the exit
statuses in every --help, and --version."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from cli import build_parser
from eval.cli import EXIT_STATUSES, GLOBAL_OPTIONS, HelpFormatter, add_command

CRUCIBLE = str(Path(sys.executable).parent / "crucible")


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] | None = None):
    """(command path, parser) for the parser and every subcommand under it."""
    path = path or (parser.prog,)
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def problems(parser: argparse.ArgumentParser) -> list[str]:
    """Every option without help, every option whose help shows no default, every subcommand without help."""
    found = []
    for path, command in commands(parser):
        where = " ".join(path)
        formatter = command._get_formatter()
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                found += [f"{where} {name}: no help" for name in action.choices if name not in helped]
                continue
            name = "/".join(action.option_strings) or action.dest
            if not action.help or action.help == argparse.SUPPRESS:
                found.append(f"{where} {name}: no help")
                continue
            takes_value = action.option_strings and action.nargs != 0 and not action.required
            if takes_value and "default" not in formatter._expand_help(action):
                found.append(f"{where} {name}: the help shows no default")
    return found


def test_every_option_has_help_and_shows_its_default():
    assert problems(build_parser()) == []


def test_the_walk_finds_an_option_without_help_or_default():
    parser = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command")
    bare = sub.add_parser("bare", formatter_class=HelpFormatter)  # a subcommand without help
    bare.add_argument("--silent")  # no help at all
    bare.add_argument("--vague", help="a value")  # default None, and the help does not say what happens then
    bare.add_argument("--shown", default=3, help="a value")  # the formatter appends "(default: 3)"
    bare.add_argument("--flag", action="store_true", help="a flag")  # flags are off unless given
    assert problems(parser) == ["x bare: no help", "x bare --silent: no help",
                                "x bare --vague: the help shows no default"]


def test_every_command_documents_the_exit_statuses_and_the_global_options():
    for path, command in commands(build_parser()):
        text = command.format_help()
        assert EXIT_STATUSES.splitlines()[0] in text and "130  interrupted" in text, path
        assert "--quiet" in text and "--verbose" in text, path


def test_help_and_version_from_the_console_script():
    shown = subprocess.run([CRUCIBLE, "generate", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--no-curate" in shown.stdout and "(default: stdlib)" in shown.stdout
    assert "2    usage: refused before any work" in shown.stdout
    printed = subprocess.run([CRUCIBLE, "--version"], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0 and printed.stdout.strip() == f"crucible {version('crucible')}"


def test_usage_errors_exit_2_and_global_options_go_before_or_after_the_command():
    unknown = subprocess.run([CRUCIBLE, "generate", "--seeds", "many"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "invalid int value: 'many'" in unknown.stderr
    parser = build_parser()
    assert parser.parse_args(["--quiet", "catalog"]).quiet is True
    assert parser.parse_args(["catalog", "-q"]).quiet is True
    assert not hasattr(parser.parse_args(["catalog"]), "quiet")
    assert parser.parse_args(["eval", "run", "--benchmark", "mbpp", "--model", "m", "--verbose"]).verbose is True


def test_add_command_gives_the_shared_formatter_epilog_and_options():
    parser = argparse.ArgumentParser(prog="x")
    made = add_command(parser.add_subparsers(), "thing", "does a thing")
    assert made.formatter_class is HelpFormatter and made.epilog == EXIT_STATUSES
    assert {a.dest for a in GLOBAL_OPTIONS._actions} <= {a.dest for a in made._actions}
    assert made.parse_args([]).prog == "x thing"
