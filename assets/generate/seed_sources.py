"""Where seed code comes from: a registry of named sources, each a local source tree or a Hugging Face dataset.

The registry is `$CRUCIBLE_HOME/sources.yaml` (or any YAML file given to the seed asset):

    sources:
      mylib: {kind: local, path: /src/mylib, license: MIT}
      stack-py: {kind: hf, dataset: bigcode/the-stack-smol, data_dir: data/python, split: train}
      systems: {kind: local, path: /src/tools, license: MIT, languages: [rust, go]}   # default [python]; or all
      shard0: {kind: hf, dataset: parquet, data_files: /data/shard0.parquet}     # local files work too
      oss75k: {kind: import, preset: magicoder-oss-instruct, dataset: /data/oss.jsonl, verify: tests}

An `import` source is an instruction dataset (a local .jsonl/.json/.parquet file or a dataset id) whose rows become
dialogues directly (assets/imports/): it has no seeds, and `crucible import` registers and runs it.

The source `stdlib` is built in: the running Python's standard library (PSF-2.0), real open-source code present on
every machine. So is `library:<package>` (e.g. `library:numpy`): the package's own source as the sandbox's interpreter
has it installed, the seed of library_instruct's problems, which need that package inside the sandbox. A source's name
is its partition key.

A source reads the files of its `languages` (default python; `all` for every one in seed_languages.LANGUAGES), found
by extension; `extensions` replaces that list of endings when given.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assets.generate.config import PYTHON
from assets.generate.seed_languages import ALL, LANGUAGE_NAMES, extensions_of, language_for
from resources.home import Home
from resources.sandbox import Sandbox

STDLIB = "stdlib"
SOURCE_KINDS = ("local", "hf", "import")
VERIFY_MODES = ("tests", "none")  # an import's rows: run against tests the teacher writes, or taken as they are
LIBRARY_PREFIX = "library:"
# The interpreter the sandbox runs programs with: a library's seeds are the code its problems will import there.
SANDBOX_PYTHON = Sandbox.model_fields["python"].default
PACKAGE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Licences of popular packages whose metadata holds no short SPDX id (a full licence text, or nothing).
KNOWN_LICENSES = {"numpy": "BSD-3-Clause", "scipy": "BSD-3-Clause", "pandas": "BSD-3-Clause",
                  "networkx": "BSD-3-Clause", "sympy": "BSD-3-Clause"}
# Run by the sandbox's interpreter with the package name as argv[1] (never formatted into the code): one JSON line
# with the package's folder and its distribution's licence fields, or the error that stopped it.
LOCATE_PACKAGE = """\
import importlib, importlib.metadata as md, json, os, sys
name = sys.argv[1]
try:
    module = importlib.import_module(name)
except Exception as exc:
    print(json.dumps({'error': f'{type(exc).__name__}: {exc}', 'missing': isinstance(exc, ImportError)}))
    raise SystemExit(0)
init = os.path.basename(getattr(module, '__file__', None) or '')
if not init.startswith('__init__.'):
    print(json.dumps({'error': f'{name} is a single module or a namespace package, not a package folder'}))
    raise SystemExit(0)
meta = {}
for dist in md.packages_distributions().get(name, [name]):
    try:
        found = md.metadata(dist)
    except md.PackageNotFoundError:
        continue
    meta = {'expression': found.get('License-Expression'), 'license': found.get('License')}
    break
print(json.dumps({'path': os.path.dirname(module.__file__), **meta}))
"""
# Column names tried in order for Stack-style datasets.
CONTENT_COLUMNS = ("content", "code", "text")
PATH_COLUMNS = ("path", "max_stars_repo_path", "repo_path", "filepath")
LICENSE_COLUMNS = ("license", "licenses", "max_stars_repo_licenses", "detected_licenses")


class SourceError(ValueError):
    """A source that cannot be read; the message names it and says what to fix."""


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str  # "local", "hf" or "import"
    path: str | None = None  # local: the tree's root
    license: str | None = None  # local: the tree's license (SPDX id); hf: fallback when a row has none
    dataset: str | None = None  # hf: a dataset name, or a builder ("parquet", "json") with data_files
    data_files: tuple[str, ...] | None = None
    data_dir: str | None = None
    split: str = "train"
    languages: tuple[str, ...] = (PYTHON,)  # or "all"; see seed_languages.LANGUAGES
    extensions: tuple[str, ...] | None = None  # file endings read; default: those of `languages`
    exclude: tuple[str, ...] = field(default_factory=tuple)  # path globs skipped (reason excluded_path)
    # import: the preset (assets/imports/presets.py) and its column renames, the rows to read, and tests|none
    preset: str | None = None
    columns: dict | None = None
    limit: int | None = None
    verify: str = "tests"

    def __post_init__(self):
        names = (self.languages,) if isinstance(self.languages, str) else tuple(self.languages)
        if ALL in names:
            names = LANGUAGE_NAMES
        for value in names:
            if value not in LANGUAGE_NAMES:
                raise SourceError(f"source {self.name!r}: language {value!r} is not one of "
                                  f"{', '.join(LANGUAGE_NAMES)} or {ALL}")
        object.__setattr__(self, "languages", names)

    def file_extensions(self) -> tuple[str, ...]:
        return self.extensions or extensions_of(self.languages)

    def language_of(self, path: str) -> str | None:
        """The language a file is read as, by its ending: the first of the source's languages that owns it, else any
        language that does (an ending listed in `extensions`), else the source's only language; None otherwise."""
        found = language_for(path, self.languages) or language_for(path, LANGUAGE_NAMES)
        return found or (self.languages[0] if len(self.languages) == 1 else None)


@dataclass
class SourceFile:
    path: str  # relative to the source root (local) or as the dataset names it
    data: bytes
    license: str | None


def stdlib_spec() -> SourceSpec:
    root = sysconfig.get_paths()["stdlib"]
    # The stdlib's own test suites, IDLE and the vendored pip/ensurepip wheels are not seed material.
    return SourceSpec(STDLIB, "local", path=root, license="PSF-2.0",
                      exclude=("test/*", "*/test/*", "*/tests/*", "idlelib/*", "ensurepip/*", "site-packages/*",
                               "lib2to3/*", "__phello__/*", "*/__main__.py"))


def library_spec(package: str, python: str = SANDBOX_PYTHON) -> SourceSpec:
    """The source `library:<package>`: the package's folder as `python` (the sandbox's interpreter) imports it, its
    licence from the distribution's metadata (or KNOWN_LICENSES), tests and build scripts excluded."""
    name = f"{LIBRARY_PREFIX}{package}"
    if not PACKAGE_NAME.fullmatch(package):
        raise SourceError(f"seed source {name!r}: {package!r} is not a top-level package name (use library:numpy)")
    install = f"install it for the sandbox's interpreter {python}: apt-get install python3-{package.lower()}"
    try:
        done = subprocess.run([python, "-c", LOCATE_PACKAGE, package], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"seed source {name!r}: cannot run {python} ({type(exc).__name__}); {install}") from exc
    try:
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        error = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise SourceError(f"seed source {name!r}: {python} could not locate {package} ({error})") from None
    if found.get("missing"):
        raise SourceError(f"seed source {name!r}: {python} cannot import {package} ({found['error'][:200]}); "
                          f"{install}")
    if "error" in found:
        raise SourceError(f"seed source {name!r}: {found['error'][:200]}; library sources read a package's folder")
    return SourceSpec(name, "local", path=found["path"], license=_short_license(found, package),
                      exclude=("tests/*", "*/tests/*", "test/*", "*/test/*", "testing/*", "*/testing/*",
                               "conftest.py", "*/conftest.py", "setup.py", "*/setup.py", "*/__main__.py"))


def _short_license(found: dict, package: str) -> str | None:
    """An SPDX-like id from the metadata, else the known one: `License` often holds a whole licence text."""
    for value in (found.get("expression"), found.get("license")):
        if value and "\n" not in value.strip() and len(value.strip()) <= 40 and value.strip().upper() != "UNKNOWN":
            return value.strip()
    return KNOWN_LICENSES.get(package.lower())


def default_sources_file(home: Home | None = None) -> Path:
    return (home or Home.from_env()).sources_file


def load_sources(path: str | Path | None = None, home: Home | None = None) -> dict[str, SourceSpec]:
    """Every registered source (the built-in stdlib first): from `path`, else the home's registry."""
    sources = {STDLIB: stdlib_spec()}
    file = Path(path) if path else default_sources_file(home)
    if not file.is_file():
        if path:
            raise SourceError(f"sources file {file} does not exist; create it or leave the setting empty")
        return sources
    try:
        doc = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SourceError(f"sources file {file} is not valid YAML ({exc.__class__.__name__}); fix its syntax") from exc
    entries = doc.get("sources", {}) if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise SourceError(f"sources file {file}: expected a mapping under 'sources:'")
    for name, entry in entries.items():
        sources[str(name)] = parse_spec(str(name), entry, file)
    return sources


def require_source(name: str, path: str | Path | None = None, home: Home | None = None) -> SourceSpec:
    """The registered source `name` (or the built-in `library:<package>`), or a SourceError saying where to register
    it."""
    if name.startswith(LIBRARY_PREFIX):
        return library_spec(name[len(LIBRARY_PREFIX):])
    sources = load_sources(path, home)
    if name not in sources:
        raise SourceError(f"seed source {name!r} is not registered: add it to {path or default_sources_file(home)} "
                          f"(known: {sorted(sources)})")
    return sources[name]


def parse_spec(name: str, entry, file: Path | str = "<config>") -> SourceSpec:
    if not isinstance(entry, dict) or entry.get("kind") not in SOURCE_KINDS:
        raise SourceError(f"{file}: source {name!r} needs `kind: local`, `kind: hf` or `kind: import`")
    known = set(SourceSpec.__dataclass_fields__) - {"name"}
    unknown = set(entry) - known
    if unknown:
        raise SourceError(f"{file}: source {name!r} has unknown keys {sorted(unknown)}; known: {sorted(known)}")
    values = dict(entry)
    for key in ("data_files", "extensions", "exclude", "languages"):
        if key in values and values[key] is not None:
            value = values[key]
            values[key] = (value,) if isinstance(value, str) else tuple(value)
    try:
        spec = SourceSpec(name=name, **values)
    except SourceError as exc:
        raise SourceError(f"{file}: {exc}") from None
    if spec.kind == "local" and not spec.path:
        raise SourceError(f"{file}: local source {name!r} needs `path`")
    if spec.kind == "hf" and not spec.dataset:
        raise SourceError(f"{file}: hf source {name!r} needs `dataset` (a name, or parquet/json with data_files)")
    if spec.kind == "import" and not (spec.dataset and spec.preset):
        raise SourceError(f"{file}: import source {name!r} needs `preset` and `dataset` (a file or a dataset id)")
    if spec.verify not in VERIFY_MODES:
        raise SourceError(f"{file}: source {name!r}: verify {spec.verify!r} is not one of {', '.join(VERIFY_MODES)}")
    return spec


def register_source(spec_entry: dict, name: str, path: str | Path | None = None, home: Home | None = None) -> Path:
    """Add (or replace) a source in the registry file; returns the file."""
    parse_spec(name, spec_entry)
    file = Path(path) if path else default_sources_file(home)
    doc = yaml.safe_load(file.read_text()) if file.is_file() else None
    doc = doc if isinstance(doc, dict) else {}
    doc.setdefault("sources", {})[name] = spec_entry
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=True))
    os.replace(tmp, file)
    return file


def excluded(path: str, spec: SourceSpec) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in spec.exclude)


def iter_files(spec: SourceSpec, max_files: int | None = None) -> Iterator[SourceFile]:
    """Raw files of a source, in a stable order. Decoding and filtering are the caller's business."""
    if spec.kind == "import":
        raise SourceError(f"source {spec.name!r} is an imported dataset (preset {spec.preset}): it has no seeds; its "
                          f"rows are materialized by imported_dialogues (`crucible import`)")
    if spec.kind == "local":
        yield from _iter_local(spec, max_files)
    else:
        yield from _iter_hf(spec, max_files)


def _iter_local(spec: SourceSpec, max_files: int | None) -> Iterator[SourceFile]:
    root = Path(spec.path).expanduser()
    if not root.is_dir():
        raise SourceError(f"source {spec.name!r}: {root} is not a directory; fix `path` in the sources file")
    count, extensions = 0, spec.file_extensions()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        # Prune excluded folders (the stdlib's site-packages holds every installed package): not even read.
        dirnames[:] = sorted(d for d in dirnames
                             if not excluded(f"{d}/_" if rel_dir == "." else f"{rel_dir}/{d}/_", spec))
        for filename in sorted(filenames):
            if not filename.endswith(extensions):
                continue
            full = Path(dirpath) / filename
            if full.is_symlink():
                continue
            rel = full.relative_to(root).as_posix()
            try:
                data = full.read_bytes()
            except OSError:
                continue
            yield SourceFile(rel, data, spec.license)
            count += 1
            if max_files and count >= max_files:
                return


def _first(row: dict, names: tuple[str, ...]):
    for name in names:
        if row.get(name) is not None:
            return row[name]
    return None


def _iter_hf(spec: SourceSpec, max_files: int | None) -> Iterator[SourceFile]:
    import datasets

    kwargs = {"split": spec.split, "streaming": True}
    if spec.data_files:
        kwargs["data_files"] = list(spec.data_files)
    if spec.data_dir:
        kwargs["data_dir"] = spec.data_dir
    try:
        stream = datasets.load_dataset(spec.dataset, **kwargs)
    except Exception as exc:  # datasets raises many types (network, missing files, bad builder)
        raise SourceError(f"source {spec.name!r}: cannot open dataset {spec.dataset!r}: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
    count, extensions = 0, spec.file_extensions()
    for index, row in enumerate(stream):
        content = _first(row, CONTENT_COLUMNS)
        if content is None:
            raise SourceError(f"source {spec.name!r}: rows have none of the columns {CONTENT_COLUMNS}; "
                              f"columns seen: {sorted(row)}")
        path = _first(row, PATH_COLUMNS) or f"row-{index}"
        license_value = _first(row, LICENSE_COLUMNS)
        if isinstance(license_value, (list, tuple)):
            license_value = license_value[0] if len(license_value) == 1 else ",".join(map(str, license_value))
        data = content.encode("utf-8", errors="surrogatepass") if isinstance(content, str) else bytes(content)
        if not str(path).endswith(extensions):
            continue
        yield SourceFile(str(path), data, license_value or spec.license)
        count += 1
        if max_files and count >= max_files:
            return
