"""Install llama.cpp's checkpoint-to-GGUF converter into the venv, from the sdist of the installed llama-cpp-python.

    python finetune/install_converter.py                 # `make setup` runs this; a no-op when already installed
    python finetune/install_converter.py --sdist FILE    # extract from a local llama_cpp_python-X.tar.gz instead

Why this way: llama.cpp's convert_hf_to_gguf.py (with its `conversion/` package and the `gguf-py` it is written
against) is not published as an installable package, but llama-cpp-python's sdist vendors the very llama.cpp its
wheel was built from, so converter and runtime agree on the GGUF format. Both are MIT; llama.cpp's LICENSE is copied
beside the files. The result is <venv>/share/llama.cpp/ with convert_hf_to_gguf.py, conversion/, gguf-py/, LICENSE and
a VERSION file naming the llama-cpp-python release it came from; the same release already there is not fetched again.

Standard library only (the sdist is fetched by resources/llama_sdist.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

if __package__ in (None, ""):  # run as a script (`python finetune/install_converter.py`): the repo root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resources.llama_sdist import VENDOR, InstallError, check_sdist, download_sdist, run_install  # noqa: E402

WANTED_FILES = ("convert_hf_to_gguf.py", "LICENSE")
WANTED_DIRS = ("conversion", "gguf-py")
CONVERTER = "convert_hf_to_gguf.py"


def default_dest() -> Path:
    return Path(sys.prefix) / "share" / "llama.cpp"


def is_current(dest: Path, version: str) -> bool:
    try:
        return (dest / "VERSION").read_text().strip() == version and (dest / CONVERTER).is_file()
    except OSError:
        return False


def wanted(relative: PurePosixPath) -> bool:
    """Whether a path inside vendor/llama.cpp belongs to the converter."""
    if not relative.parts or ".." in relative.parts:
        return False
    return str(relative) in WANTED_FILES or (len(relative.parts) > 1 and relative.parts[0] in WANTED_DIRS)


def extract_converter(sdist: Path, into: Path) -> int:
    """Copy the converter's regular files out of the sdist into `into`, dropping the leading
    `<sdist>/vendor/llama.cpp/`; the number of files copied."""
    copied = 0
    with tarfile.open(sdist, "r:gz") as archive:
        for member in archive:
            if not member.isfile():
                continue
            parts = PurePosixPath(member.name).parts
            if len(parts) < 4 or PurePosixPath(*parts[1:3]) != VENDOR:
                continue
            relative = PurePosixPath(*parts[3:])
            if not wanted(relative):
                continue
            target = into.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.extractfile(member) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)
            os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
            copied += 1
    if not (into / CONVERTER).is_file():
        raise InstallError(f"{sdist.name} has no {VENDOR / CONVERTER}: pass the sdist of a llama-cpp-python release "
                           "that vendors llama.cpp's converter")
    return copied


def install(dest: Path, version: str, sdist: Path | None = None) -> str:
    """Install the converter of `version` at `dest` unless it is already there; a line saying what happened."""
    if is_current(dest, version):
        return f"llama.cpp converter {version} already installed at {dest}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".llama.cpp-") as tmp:
        tmp = Path(tmp)
        source = sdist or download_sdist(version, tmp / "sdist")
        check_sdist(source, version)
        staged = tmp / "llama.cpp"
        count = extract_converter(source, staged)
        (staged / "VERSION").write_text(version + "\n")
        # Swap whole folders, so a killed install leaves either the old converter or the new one, never a mix.
        old = tmp / "old"
        if dest.exists():
            dest.rename(old)
        staged.rename(dest)
    return f"llama.cpp converter {version} installed at {dest} ({count} files from {source.name})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=default_dest(), help="default: <venv>/share/llama.cpp")
    parser.add_argument("--sdist", type=Path, help="a local llama_cpp_python sdist instead of `pip download`")
    args = parser.parse_args(argv)
    return run_install("install_converter", args.sdist, lambda version, sdist: install(args.dest, version, sdist))


if __name__ == "__main__":
    sys.exit(main())
