"""The sdist of the installed llama-cpp-python: the llama.cpp (MIT) that its wheel was compiled from, vendored under
vendor/llama.cpp. Two things Crucible needs from it are not published as packages: llama.cpp's checkpoint-to-GGUF
converter (finetune/install_converter.py) and its batching `llama-server` (resources/llama_server_build.py).

Standard library only, plus `pip download` run as a subprocess (pip's cache makes it quick after the first build).
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath

DIST = "llama-cpp-python"
VENDOR = PurePosixPath("vendor/llama.cpp")


class InstallError(RuntimeError):
    """Something could not be installed from the sdist. One line naming the fix."""


def installed_version() -> str:
    try:
        return importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        raise InstallError(f"{DIST} is not installed in {sys.prefix}: run `make setup`") from None


def download_sdist(version: str, into: Path) -> Path:
    """The sdist of `version`, fetched by pip (from its cache when it has it)."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
           f"{DIST}=={version}", "-d", str(into)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(into.glob("*.tar.gz"))
    if done.returncode != 0 or not found:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise InstallError(f"pip could not download the {DIST}=={version} sdist ({tail}): check the network or "
                           "pip's index settings, or pass --sdist FILE")
    return found[0]


def check_sdist(source: Path, version: str) -> None:
    """Refuse a file that is not the sdist of `version` (a converter or server must match the installed runtime)."""
    if not source.name.endswith(f"-{version}.tar.gz"):
        raise InstallError(f"{source.name} is not the sdist of the installed {DIST} {version}: give "
                           f"llama_cpp_python-{version}.tar.gz")


def run_install(prog: str, sdist: Path | None, install: Callable[[str, Path | None], str]) -> int:
    """A command line's exit status: `install(installed version, sdist)`'s line printed, or an InstallError as one
    line on stderr naming `prog`."""
    try:
        if sdist is not None and not sdist.is_file():
            raise InstallError(f"{sdist}: no such sdist file")
        print(install(installed_version(), sdist), flush=True)
    except InstallError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    return 0
