"""Build llama.cpp's own `llama-server` from the sdist of the installed llama-cpp-python and install it as
<venv>/bin/llama-server, the bundled teacher's default server (resources/llm_server.py).

    python -m resources.llama_server_build            # `make setup` runs this; a no-op when the same build is there
    python -m resources.llama_server_build --sdist F  # build from a local llama_cpp_python-X.tar.gz

Why it is built here: llama-cpp-python's Python server answers one request at a time, while llama.cpp's server runs
parallel slots with continuous batching (benchmarks/teacher_parallel.py measures the difference). That server is not
published as a wheel, but llama-cpp-python's sdist vendors the very llama.cpp its wheel was compiled from (MIT), so
server and Python bindings read the same GGUF files the same way. The build is static (one file, no shared libraries
to find), for this CPU (GGML_NATIVE) and with the same compiler flags as the Python bindings (LLAMA_CPP_CFLAGS in the
Makefile: AMX off, see there); no web UI and no HTTPS (nothing is fetched at build time).

A build takes about 13 minutes of CPU time (7 on 2 idle cores), so the binary is also kept in the user's cache
($XDG_CACHE_HOME or ~/.cache)/crucible/llama-server/<key>/, keyed by llama-cpp-python's version, the flags and this
CPU's feature flags: a fresh venv on the same machine copies it instead of compiling again.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repo root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resources.llama_sdist import VENDOR, InstallError, check_sdist, download_sdist, run_install  # noqa: E402

BINARY = "llama-server"
# Off: the embedded web UI (its assets would be fetched or built with npm), HTTPS (OpenSSL headers), the other tools,
# tests and examples; shared libraries (a static binary needs no library path).
CMAKE_OPTIONS = ("-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=ON",
                 "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON",
                 "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_UI=OFF",
                 "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF")


def default_dest() -> Path:
    return Path(sys.prefix) / "bin" / BINARY


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """This CPU's feature flags (GGML_NATIVE compiles for them), or "" where /proc/cpuinfo is not readable."""
    try:
        return next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return ""


def build_key(version: str, cflags: str) -> str:
    """What a build depends on besides the source: the release, the flags and the CPU it is compiled for."""
    digest = hashlib.sha256("\n".join((version, cflags, cpu_flags(), *CMAKE_OPTIONS)).encode()).hexdigest()
    return f"{version}-{digest[:16]}"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crucible" / "llama-server"


def stamp_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".build")


def is_current(dest: Path, key: str) -> bool:
    try:
        return stamp_path(dest).read_text().strip() == key and os.access(dest, os.X_OK)
    except OSError:
        return False


def extract_source(sdist: Path, into: Path) -> Path:
    """vendor/llama.cpp of the sdist, extracted under `into`; its path."""
    with tarfile.open(sdist, "r:gz") as archive:
        members = [m for m in archive.getmembers() if len(Path(m.name).parts) > 3
                   and Path(*Path(m.name).parts[1:3]).as_posix() == str(VENDOR)]
        if not members:
            raise InstallError(f"{sdist.name} has no {VENDOR}: pass the sdist of a llama-cpp-python release that "
                               "vendors llama.cpp")
        archive.extractall(into, members=members, filter="data")
    return into / Path(members[0].name).parts[0] / VENDOR


def compile_server(source: Path, build: Path, cflags: str, jobs: int, log: Path) -> Path:
    """Configure and build the llama-server target; the binary. Compiler output goes to `log`."""
    cmake = shutil.which("cmake", path=os.pathsep.join((str(Path(sys.executable).parent), os.environ["PATH"])))
    if cmake is None:
        raise InstallError("cmake is not installed: `pip install cmake` in the venv (make setup does) or "
                           "`sudo apt-get install -y cmake`")
    flags = [f"-DCMAKE_C_FLAGS={cflags}", f"-DCMAKE_CXX_FLAGS={cflags}"] if cflags else []
    steps = ([cmake, "-S", str(source), "-B", str(build), *CMAKE_OPTIONS, *flags],
             [cmake, "--build", str(build), "--target", BINARY, "-j", str(jobs)])
    with log.open("wb") as out:
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                raise InstallError(f"building {BINARY} failed at `{' '.join(step[:3])}` ({tail}); full log {log}")
    binary = build / "bin" / BINARY
    if not binary.is_file():
        raise InstallError(f"the build finished without {binary}; full log {log}")
    return binary


def place(binary: Path, dest: Path, key: str) -> None:
    """Copy `binary` to `dest` atomically (a killed install leaves the old file or the new one) and stamp it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staged = dest.with_name(f".{dest.name}.{os.getpid()}")
    shutil.copy2(binary, staged)
    staged.chmod(0o755)
    staged.replace(dest)
    stamp_path(dest).write_text(key + "\n")


def install(dest: Path, version: str, cflags: str, sdist: Path | None = None, jobs: int | None = None,
            cache: Path | None = None) -> str:
    """Install the llama-server of `version` at `dest` unless the same build is there; a line saying what happened."""
    key = build_key(version, cflags)
    if is_current(dest, key):
        return f"{BINARY} {key} already installed at {dest}"
    cached = (cache or cache_root()) / key / BINARY
    if os.access(cached, os.X_OK):
        place(cached, dest, key)
        return f"{BINARY} {key} copied from {cached} to {dest}"
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-server-build-") as tmp:
        tmp = Path(tmp)
        source = sdist or download_sdist(version, tmp / "sdist")
        check_sdist(source, version)
        log = cached.parent / "build.log"
        binary = compile_server(extract_source(source, tmp / "src"), tmp / "build", cflags,
                                jobs or os.cpu_count() or 1, log)
        place(binary, cached, key)
    place(cached, dest, key)
    return f"{BINARY} {key} built from {source.name} and installed at {dest} (cached in {cached.parent})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=default_dest(), help="default: <venv>/bin/llama-server")
    parser.add_argument("--sdist", type=Path, help="a local llama_cpp_python sdist instead of `pip download`")
    parser.add_argument("--cflags", default=os.environ.get("CFLAGS", ""),
                        help="C and C++ compiler flags (default: $CFLAGS; the Makefile passes LLAMA_CPP_CFLAGS)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel compile jobs (default: every core)")
    args = parser.parse_args(argv)
    return run_install("llama_server_build", args.sdist, lambda version, sdist: install(
        args.dest, version, args.cflags.strip(), sdist, args.jobs))


if __name__ == "__main__":
    sys.exit(main())
