"""What is wrong with a folder staged for the Hub: a list of one-line problems, empty when the folder is valid. The
rules the Hub and its libraries apply, checked offline on the folder exactly as it would be uploaded.

    problems = validate_dataset_folder(staged)            # [] or ["README.md: license 'mit, psf-2.0' ...", ...]
    problems = validate_model_folder(staged)
    report = inspect_dataset_folder(staged)               # .problems, .splits (rows `datasets` loaded), .card

A dataset folder: README.md parses as a DatasetCard; its licence is valid (`license_problems`); it has
task_categories; every config's data_files patterns match files in the folder; dataset_info, when present, names only
those splits and, where it gives num_examples, the rows `datasets` loads; every split loads with `datasets` (Parquet)
and has the expected columns, `messages` a list of {role, content}.

A model folder: README.md parses as a ModelCard (model-index included); one valid licence; base_model a Hub repo id
(required unless the card carries the `from-scratch` tag); datasets repo ids; every model-index result with a task
type, a dataset type, a metric type and a numeric value; config.json (or a PEFT adapter_config.json) that parses;
weights whose safetensors headers describe the whole file (a truncated copy fails); tokenizer files.

No Dagster here: the trainer's subprocess and the card writers import the licence rules from this module.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# The licence ids the Hub accepts in a card (its "Licenses" documentation page), `other` excepted: that one needs a
# `license_name` and a `license_link` (see `license_problems`).
HUB_LICENSES = frozenset({
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc",
    "lppl-1.3c", "ms-pl", "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa",
    "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2", "gemma", "unknown",
})
OTHER = "other"
# A `license_name` is an id: lowercase letters and digits in words joined by '-' or '.' (my-license-1.0).
LICENSE_NAME = re.compile(r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$")
# The tag a model card carries when there is no base model to name (a randomly initialised model).
FROM_SCRATCH_TAG = "from-scratch"
DATASET_COLUMNS = ("id", "messages")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
README = "README.md"


@dataclass
class DatasetReport:
    """A dataset folder's problems (empty: valid), the rows of every split `datasets` loaded, the card's YAML."""

    problems: list[str] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    card: dict = field(default_factory=dict)


def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:300]


def _load_card(card_class, folder: Path) -> tuple[object | None, list[str]]:
    readme = folder / README
    if not readme.is_file():
        return None, [f"{README}: missing (the card the Hub shows, with its YAML front matter)"]
    try:
        return card_class.load(readme), []
    except Exception as err:  # huggingface_hub raises ValueError or yaml errors for bad front matter
        return None, [f"{README}: the card does not parse: {_first_line(err)}"]


def _is_url(link: str) -> bool:
    return link.startswith(("https://", "http://"))


def license_problems(meta: dict, folder: Path, allow_list: bool = True) -> list[str]:
    """The card's licence fields against the Hub's rules: one Hub licence id; or (datasets only, `allow_list`) a list
    of Hub ids; or `other` with `license_name` (an id such as mixed-seed-licenses) and `license_link` (a URL or a
    file in the folder). Never a comma-joined name."""
    value = meta.get("license")
    if not value:
        return [f"{README}: no license"]
    if isinstance(value, list) and not allow_list:
        return [f"{README}: license {value!r} is a list; a model card takes one licence id"]
    ids = value if isinstance(value, list) else [value]
    problems = []
    for one in ids:
        if not isinstance(one, str) or "," in one:
            problems.append(f"{README}: license {one!r} is not one id (a comma-joined name?); give a list of Hub "
                            "licence ids or `other` with license_name and license_link")
        elif one != OTHER and one not in HUB_LICENSES:
            problems.append(f"{README}: license {one!r} is not a Hub licence id; use `other` with license_name and "
                            "license_link")
    if OTHER in ids:
        if len(ids) > 1:
            problems.append(f"{README}: license `other` cannot be listed beside other ids")
        name, link = meta.get("license_name"), meta.get("license_link")
        if not name:
            problems.append(f"{README}: license `other` needs a license_name")
        elif not isinstance(name, str) or not LICENSE_NAME.match(name):
            problems.append(f"{README}: license_name {name!r} is not an id (lowercase words joined by '-' or '.', "
                            "e.g. mixed-seed-licenses)")
        if not link:
            problems.append(f"{README}: license `other` needs a license_link (a URL or a file in the repo)")
        elif not isinstance(link, str) or not (_is_url(link) or (folder / link).is_file()):
            problems.append(f"{README}: license_link {link!r} is neither a URL nor a file in the folder")
    return problems


def config_files(config: dict) -> dict[str, list[str]]:
    """split -> path patterns of one `configs` entry (data_files as a string, a list of strings or of
    {split, path}; a bare pattern is the train split)."""
    data_files = config.get("data_files")
    if isinstance(data_files, str):
        return {"train": [data_files]}
    out: dict[str, list[str]] = {}
    for entry in data_files or []:
        if isinstance(entry, str):
            out.setdefault("train", []).append(entry)
        elif isinstance(entry, dict) and entry.get("split") and entry.get("path"):
            paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            out.setdefault(str(entry["split"]), []).extend(str(p) for p in paths)
    return out


def _matched(folder: Path, pattern: str) -> list[Path]:
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        return []
    return sorted(p for p in folder.glob(pattern) if p.is_file())


def _data_files(card: dict, folder: Path) -> tuple[dict[str, dict[str, list[Path]]], list[str]]:
    """config name -> split -> files, and the problems of the `configs` section."""
    configs = card.get("configs")
    if not configs or not isinstance(configs, list):
        return {}, [f"{README}: the front matter names no configs; the Hub would not know the splits"]
    resolved, problems = {}, []
    for config in configs:
        name = config.get("config_name", "default") if isinstance(config, dict) else "?"
        splits = config_files(config) if isinstance(config, dict) else {}
        if not splits:
            problems.append(f"{README}: config {name!r} has no data_files")
            continue
        resolved[name] = {}
        for split, patterns in splits.items():
            files = [f for pattern in patterns for f in _matched(folder, pattern)]
            if not files:
                problems.append(f"{README}: config {name!r} split {split!r}: {', '.join(patterns)} matches no file; "
                                "no files for that split")
            elif any(f.suffix != ".parquet" for f in files):
                problems.append(f"{README}: config {name!r} split {split!r}: only Parquet data files are published")
            else:
                resolved[name][split] = files
    return resolved, problems


def _messages_problem(feature) -> str | None:
    inner = getattr(feature, "feature", None)
    if inner is None and isinstance(feature, list) and feature:
        inner = feature[0]
    if not isinstance(inner, dict) or not {"role", "content"} <= set(inner):
        return f"`messages` is {feature}, not a list of {{role, content}}"
    return None


@contextlib.contextmanager
def _quiet_datasets():
    """No progress bars from `datasets` while validating (they flood the run logs)."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


def _load_splits(folder: Path, name: str, files: dict[str, list[Path]],
                 columns: Iterable[str]) -> tuple[dict[str, int], list[str]]:
    """Rows per split as `datasets` loads the config, and the problems (unreadable files, missing columns)."""
    from datasets import load_dataset

    # A throwaway cache: validation must not leave Arrow copies of every release in the user's datasets cache.
    with tempfile.TemporaryDirectory(prefix="crucible-validate-") as cache, _quiet_datasets():
        try:
            loaded = load_dataset("parquet", data_files={s: [str(f) for f in fs] for s, fs in files.items()},
                                  cache_dir=cache)
        except Exception as err:
            return {}, [f"{folder}: `datasets` cannot load the splits of config {name!r}: {_first_line(err)}"]
        rows, problems = {}, []
        for split, ds in loaded.items():
            rows[split] = ds.num_rows
            missing = [c for c in columns if c not in ds.features]
            if missing:
                problems.append(f"config {name!r} split {split!r}: no column(s) {', '.join(missing)}")
            if "messages" in ds.features and (problem := _messages_problem(ds.features["messages"])):
                problems.append(f"config {name!r} split {split!r}: {problem}")
    return rows, problems


def _dataset_info_problems(card: dict, rows: dict[str, int]) -> list[str]:
    infos = card.get("dataset_info")
    if not infos:
        return []
    problems = []
    for info in infos if isinstance(infos, list) else [infos]:
        for split in (info or {}).get("splits") or []:
            name, expected = split.get("name"), split.get("num_examples")
            if name not in rows:
                problems.append(f"{README}: dataset_info names split {name!r}, which no config's data files hold")
            elif expected is not None and expected != rows[name]:
                problems.append(f"{README}: dataset_info says split {name!r} has {expected} rows; the files hold "
                                f"{rows[name]}")
    return problems


def inspect_dataset_folder(folder: str | Path, columns: Iterable[str] = DATASET_COLUMNS) -> DatasetReport:
    """Every problem of a dataset folder (see the module docstring), with the rows `datasets` loads per split of
    the first config and the card's YAML. `columns`: the columns every split must have."""
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    if not folder.is_dir():
        return DatasetReport([f"{folder}: not a folder"])
    card, problems = _load_card(DatasetCard, folder)
    if card is None:
        return DatasetReport(problems)
    meta = card.data.to_dict()
    report = DatasetReport(card=meta)
    report.problems += license_problems(meta, folder, allow_list=True)
    if not meta.get("task_categories"):
        report.problems.append(f"{README}: the front matter has no task_categories")
    configs, config_problems = _data_files(meta, folder)
    report.problems += config_problems
    for index, (name, files) in enumerate(configs.items()):
        rows, load_problems = _load_splits(folder, name, files, list(columns))
        report.problems += load_problems
        if index == 0:
            report.splits = rows
    report.problems += _dataset_info_problems(meta, report.splits)
    return report


def validate_dataset_folder(folder: str | Path, columns: Iterable[str] = DATASET_COLUMNS) -> list[str]:
    """The problems of a dataset folder staged for the Hub; [] when it is valid."""
    return inspect_dataset_folder(folder, columns).problems


# --- models ---------------------------------------------------------------------------------------------------------

def _repo_id_problem(what: str, value) -> str | None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except (HFValidationError, TypeError) as err:
        return f"{README}: {what} {value!r} is not a Hub repo id ({_first_line(err)})"
    return None


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def model_card_problems(meta: dict, eval_results: list | None, folder: Path) -> list[str]:
    """A model card's YAML (as `ModelCardData.to_dict()` gives it) against the Hub's rules."""
    problems = license_problems(meta, folder, allow_list=False)
    base = meta.get("base_model")
    if not base and FROM_SCRATCH_TAG not in (meta.get("tags") or []):
        problems.append(f"{README}: no base_model (the Hub id of the model fine-tuned; tag the card "
                        f"`{FROM_SCRATCH_TAG}` when there is none)")
    problems += [p for b in (_as_list(base) if base else []) if (p := _repo_id_problem("base_model", b))]
    problems += [p for d in _as_list(meta.get("datasets") or []) if (p := _repo_id_problem("datasets entry", d))]
    for result in eval_results or []:
        what = f"model-index result {result.task_type}/{result.dataset_type}/{result.metric_type}"
        if not (result.task_type and result.dataset_type and result.dataset_name and result.metric_type):
            problems.append(f"{README}: {what} lacks a task type, dataset type and name, or metric type")
        value = result.metric_value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{README}: {what} has a non-numeric value {value!r}")
    if eval_results and not meta.get("model-index", [{}])[0].get("name"):
        problems.append(f"{README}: model-index has no model name")
    return problems


def safetensors_problem(path: Path) -> str | None:
    """Whether a .safetensors file is whole: its header parses and its tensors end exactly at the end of the file."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if length < 2 or length > size - 8:
            return f"{path.name}: not a safetensors file (its header length is {length}, the file {size} bytes)"
        try:
            header = json.loads(handle.read(length))
        except ValueError as err:
            return f"{path.name}: its safetensors header does not parse ({_first_line(err)})"
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)]
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        return f"{path.name}: {size} bytes, its header describes {expected} (truncated or padded)"
    return None


def _json_problem(path: Path, key: str | None) -> str | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return f"{path.name}: does not parse as JSON ({_first_line(err)})"
    if key and (not isinstance(data, dict) or key not in data):
        return f"{path.name}: no {key!r}"
    return None


def model_file_problems(folder: Path) -> list[str]:
    """config, weights and tokenizer files of a model (or PEFT adapter) folder."""
    problems = []
    config, adapter = folder / "config.json", folder / "adapter_config.json"
    if config.is_file():
        problems += [p for p in [_json_problem(config, "model_type")] if p]
    elif adapter.is_file():
        problems += [p for p in [_json_problem(adapter, None)] if p]
    else:
        problems.append("no config.json or adapter_config.json; not a model folder")
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    if not weights:
        problems.append("no weights (*.safetensors)")
    problems += [p for w in weights if w.suffix == ".safetensors" and (p := safetensors_problem(w))]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError) as err:
            problems.append(f"{index.name}: no weight_map ({_first_line(err)})")
        else:
            problems += [f"{index.name}: shard {s} is missing" for s in sorted(shards) if not (folder / s).is_file()]
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        problems.append(f"no tokenizer files ({' or '.join(TOKENIZER_FILES)})")
    return problems


def inspect_model_folder(folder: str | Path) -> tuple[list[str], dict]:
    """Every problem of a model folder (see the module docstring), and the card's YAML ({} when it does not parse)."""
    from huggingface_hub import ModelCard

    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder}: not a folder"], {}
    card, problems = _load_card(ModelCard, folder)
    meta = {}
    if card is not None:
        meta = card.data.to_dict()
        problems += model_card_problems(meta, card.data.eval_results, folder)
    return problems + model_file_problems(folder), meta


def validate_model_folder(folder: str | Path) -> list[str]:
    """The problems of a model folder staged for the Hub; [] when it is valid."""
    return inspect_model_folder(folder)[0]
