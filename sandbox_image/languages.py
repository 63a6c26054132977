"""How the sandbox compiles and runs a program in each language it knows, declared once.

Standard library only: this module runs inside the sandbox, bundled with the runner by sandbox_image/bundle.py, and
the host reads the same table (resources/sandbox.py checks a program's `language` against it; the Makefile and the
image builds install the packages it names).

Python is special: the fork-server runs it in its own warm interpreter (sandbox_image/child.py), so it has no
command line here. Every other language is one or two steps run by the forked child with `execve`, inside the same
isolation and under the same limits as Python: an optional compile step, then the run step. The wall-clock limit
covers both steps together; rlimits (CPU, address space, file size, processes) apply to each process of each step.

The source is written as `source` in the task's fresh directory; steps run there. `{memory_mb}` in an argument is
replaced with the task's memory limit (the JVM must be told its heap; it does not fit under an address-space limit
otherwise).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

PYTHON = "python"


@dataclass(frozen=True)
class Language:
    name: str
    source: str  # file name the program is written to
    run: tuple[str, ...]  # argv of the run step
    tool: str  # the binary whose absence means the toolchain is missing ("" for none)
    package: str  # the Debian package that provides `tool`
    compile: tuple[str, ...] = ()  # argv of the compile step; empty: interpreted
    artifacts: tuple[str, ...] = ()  # files the compile step makes that the run step needs (what the cache keeps)
    env: dict = field(default_factory=dict)  # added to the sandbox's environment; "{tmp}" is the scratch root
    # stderr of a program that ran out of memory, as each runtime words it (it exits or aborts rather than being
    # killed, so its exit status alone says "failed"); the verdict says "memory" instead.
    memory_errors: tuple[str, ...] = ()
    # Address space the runtime reserves at start and never touches (V8's code range, the JVM's class space and code
    # cache, Go's heap arena index), added to the address-space limit of each step: without it these runtimes do not
    # start under a few hundred MiB. What they really use stays capped by their own heap flag ({heap_mb}) and by the
    # worker's memory cgroup.
    reserve_mb: int = 0
    # Libraries its programs may use, as (Debian package, a file it installs): `make toolchains` installs them too.
    libraries: tuple[tuple[str, str], ...] = ()

    def missing(self) -> str | None:
        """None when the toolchain is installed, else a one-line reason naming the package."""
        if not self.tool or os.access(self.tool, os.X_OK):
            return None
        return (f"language {self.name!r} needs {self.tool}, which is not installed: install the Debian package "
                f"{self.package} (as root: apt-get install -y {self.package}, or run `make toolchains`)")

    def argv(self, step: tuple[str, ...], task: dict) -> list[str]:
        memory = int(task.get("memory_mb") or 1024)
        return [arg.replace("{memory_mb}", str(memory)).replace("{heap_mb}", str(max(32, memory // 2)))
                for arg in step]

    def step_limits(self, task: dict) -> dict:
        """The task's limits for one step: its address space grown by what the runtime reserves."""
        return {**task, "memory_mb": int(task["memory_mb"]) + self.reserve_mb}

    def environment(self, base: dict, tmp: str) -> dict:
        return {**base, **{key: value.replace("{tmp}", tmp) for key, value in self.env.items()}}

    def out_of_memory(self, stderr: str) -> bool:
        return any(re.search(pattern, stderr) for pattern in self.memory_errors)


# node with one thread (V8's worker threads reserve address space and count against the process cap) and its heap
# capped at half the task's memory.
_NODE = ("/usr/bin/node", "--single-threaded", "--max-old-space-size={heap_mb}")
_NODE_OOM = (r"JavaScript heap out of memory", r"Fatal process out of memory", r"Reached heap limit",
             r"RangeError: Array buffer allocation failed")
JAVATUPLES = "/usr/share/java/javatuples.jar"
_NATIVE_OOM = (r"std::bad_alloc", r"memory allocation of \d+ bytes failed", r"Cannot allocate memory")

LANGUAGES: dict[str, Language] = {lang.name: lang for lang in (
    # Run by the fork-server's own interpreter: nothing to check, nothing to exec.
    Language(PYTHON, "main.py", (), "", "python3"),
    Language("bash", "main.sh", ("/bin/bash", "main.sh"), "/bin/bash", "bash",
             memory_errors=(r"x(m|re)alloc: .*cannot allocate", r"Cannot allocate memory")),
    Language("javascript", "main.js", (*_NODE, "main.js"), "/usr/bin/node", "nodejs", memory_errors=_NODE_OOM,
             reserve_mb=1024),
    # tsc type-checks: a type error is a compile error, as it is for anyone who builds the project.
    Language("typescript", "main.ts", (*_NODE, "main.js"), "/usr/bin/tsc", "node-typescript",
             compile=(*_NODE, "/usr/bin/tsc", "--target", "es2020", "--module", "commonjs", "--strict", "false",
                      "--outDir", ".", "main.ts"),
             artifacts=("main.js",), memory_errors=_NODE_OOM, reserve_mb=1024),
    Language("cpp", "main.cpp", ("./main",), "/usr/bin/g++", "g++",
             compile=("/usr/bin/g++", "-std=gnu++17", "-O1", "-pipe", "-o", "main", "main.cpp"),
             artifacts=("main",), memory_errors=_NATIVE_OOM),
    Language("c", "main.c", ("./main",), "/usr/bin/gcc", "gcc",
             compile=("/usr/bin/gcc", "-std=gnu17", "-O1", "-pipe", "-o", "main", "main.c", "-lm"),
             artifacts=("main",), memory_errors=_NATIVE_OOM),
    # Debug build, as `cargo run` makes: integer overflow panics instead of wrapping, which tests rely on. LLVM inside
    # rustc reserves more than 512 MiB for some programs.
    Language("rust", "main.rs", ("./main",), "/usr/bin/rustc", "rustc",
             compile=("/usr/bin/rustc", "--edition", "2021", "-C", "debuginfo=0", "-C", "strip=symbols",
                      "-o", "main", "main.rs"),
             artifacts=("main",), memory_errors=_NATIVE_OOM, reserve_mb=512),
    # GOPATH mode (no go.mod, no module proxy: there is no network anyway), no cgo (no C toolchain in the build, a
    # static binary), one build job and two runtime threads: the process cap counts threads.
    Language("go", "main.go", ("./main",), "/usr/bin/go", "golang-go",
             compile=("/usr/bin/go", "build", "-p", "1", "-o", "main", "main.go"),
             artifacts=("main",),
             env={"GOCACHE": "{tmp}/.cache/go-build", "GOPATH": "{tmp}/go", "GO111MODULE": "off", "GOPROXY": "off",
                  "CGO_ENABLED": "0", "GOMAXPROCS": "2", "GOTELEMETRY": "off"},
             memory_errors=(r"fatal error: (runtime: )?out of memory", r"runtime: out of memory",
                            r"cannot allocate memory"),
             reserve_mb=768),
    # Single-file source launch (`java Main.java`): one JVM start instead of javac + java, and the file name need not
    # match the class. Assertions on (`-ea`): Java's idiomatic tests are asserts. Heap and the two fixed reservations
    # sized so that the JVM starts under the address-space limit; serial GC and C1 only keep the thread count low.
    # javatuples on the class path: MultiPL-E's Java problems that return pairs use it.
    Language("java", "Main.java",
             ("/usr/bin/java", "-ea", "-cp", JAVATUPLES, "-Xmx{heap_mb}m", "-Xss8m", "-XX:+UseSerialGC",
              "-XX:TieredStopAtLevel=1", "-XX:ReservedCodeCacheSize=64m", "-XX:CompressedClassSpaceSize=64m",
              "-Xshare:auto", "Main.java"),
             "/usr/bin/java", "openjdk-17-jdk-headless",
             memory_errors=(r"java\.lang\.OutOfMemoryError", r"Could not reserve enough space",
                            r"Cannot allocate memory"),
             reserve_mb=1024, libraries=(("libjavatuples-java", JAVATUPLES),)),
    # Assertions on (Debian's php.ini compiles them out): a failed assert is an uncaught AssertionError, exit 255.
    Language("php", "main.php", ("/usr/bin/php", "-d", "zend.assertions=1", "-d", "assert.exception=1", "-d",
                                 "memory_limit={heap_mb}M", "main.php"), "/usr/bin/php",
             "php-cli", memory_errors=(r"Allowed memory size of \d+ bytes exhausted", r"Out of memory")),
)}



def missing_packages() -> list[str]:
    """The Debian packages of every toolchain not installed here (what `make toolchains` installs)."""
    packages = [lang.package for lang in LANGUAGES.values() if lang.missing()]
    packages += [package for lang in LANGUAGES.values() for package, path in lang.libraries if not os.path.exists(path)]
    return list(dict.fromkeys(packages))


def language_problem(name) -> str | None:
    """Why `name` is not a language the sandbox runs (one line), or None."""
    if name is None or name in LANGUAGES:
        return None
    return f"unknown language {name!r}: choose one of {', '.join(LANGUAGES)}"
