"""The fork-server as one self-contained script: what runs inside a sandbox.

    python3 sandbox_image/bundle.py > runner.py     # what the image build stores as /opt/crucible/runner.py
    script = runner_script()                        # what the host passes with `python3 -I -c` (sandbox_workers)

The runner is split into modules for reading (limits, cleanup, child, runner), but inside a sandbox there is no
package to import them from: the repository is not mounted there, and `-I` leaves a script's own directory off
sys.path. So the script holds each module's source, defines the modules in dependency order under their own names
(`sandbox_image.runner`, ...), takes them out of sys.modules again, so that a program sees the same modules as under
a plain interpreter, and starts the server. Standard library only, like everything in sandbox_image/.
"""

from __future__ import annotations

import os
import sys

PACKAGE = "sandbox_image"
# Each imports only modules before it; the last one serves.
MODULES = ("limits", "languages", "cleanup", "child", "runner")
HERE = os.path.dirname(os.path.abspath(__file__))

_LOADER = '''\
# Crucible's sandbox runner, made from sandbox_image/ by sandbox_image/bundle.py: edit the modules, not this file.
import sys
import types


def _load(package, sources):
    names = [package] + [package + "." + name for name, _ in sources]
    root = types.ModuleType(package)
    root.__path__ = []
    sys.modules[package] = root
    try:
        for name, source in sources:
            module = types.ModuleType(package + "." + name)
            sys.modules[module.__name__] = module
            exec(compile(source, "<%%s/%%s.py>" %% (package, name), "exec"), module.__dict__)
            setattr(root, name, module)
        return sys.modules[names[-1]]
    finally:
        for name in names:
            sys.modules.pop(name, None)


_load(%(package)r, %(sources)r).serve()
'''


def module_sources() -> list[tuple[str, str]]:
    """(name, source) of each runner module, in load order."""
    sources = []
    for name in MODULES:
        with open(os.path.join(HERE, name + ".py"), encoding="utf-8") as handle:
            sources.append((name, handle.read()))
    return sources


def runner_script() -> str:
    """The runner as one Python script: defines every module of MODULES, then serves on stdin/stdout."""
    return _LOADER % {"package": PACKAGE, "sources": module_sources()}


if __name__ == "__main__":
    sys.stdout.write(runner_script())
