"""Publishing folders (datasets, and later model checkpoints) to the Hugging Face Hub, or staging them offline.

    hub = HubPublisher(token=..., dataset_repo="me/crucible-sft", private=True)
    result = hub.publish_dataset(release_folder, name="crucible-sft")

Without a token or a repo id the folder is staged under $CRUCIBLE_HOME/hub/<kind>s/<name>/ exactly as it would be
uploaded, validated, and left there. With both, the staged folder is uploaded with huggingface_hub in one commit
(the repo is created first, private by configuration). A failed upload raises HubError with one line that says what
failed and where the staged folder is; the folder stays.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.home import Home, home_field

DATASET, MODEL = "dataset", "model"


class HubError(RuntimeError):
    """A publish step failed; the message is one line naming the repo, the cause and the staged folder."""


@dataclass(frozen=True)
class DatasetCheck:
    splits: dict[str, int]  # split -> rows, as `datasets` loads them
    card: dict  # the card's parsed YAML front matter


@dataclass(frozen=True)
class PublishResult:
    status: str  # "staged" (validated, not uploaded) or "uploaded"
    staged: Path
    repo_id: str | None = None
    url: str | None = None
    commit: str | None = None
    files: int = 0
    bytes: int = 0


def staging_dir(kind: str, name: str, home: Home | None = None) -> Path:
    return (home or Home.from_env()).hub / f"{kind}s" / name


def stage_folder(source: Path, kind: str, name: str, ignore: tuple[str, ...] = (), home: Home | None = None) -> Path:
    """Copy `source` (less files matching `ignore` globs) to the staging folder for (kind, name), replacing an
    earlier staging of it (atomically: the copy is made beside it and renamed in place)."""
    source = Path(source)
    if not source.is_dir():
        raise HubError(f"cannot stage {kind} {name!r}: {source} is not a folder; materialize it first")
    dest = staging_dir(kind, name, home)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(*ignore) if ignore else None)
    old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def load_card(card_class, readme: Path, remedy: str):
    """A DatasetCard or ModelCard from README.md, or HubError naming the file and what to do."""
    if not readme.is_file():
        raise HubError(f"{readme.parent}: no README.md ({card_class.__name__}); {remedy}")
    try:
        return card_class.load(readme)
    except Exception as err:  # huggingface_hub raises ValueError/yaml errors for bad front matter
        raise HubError(f"{readme}: the card does not parse: {str(err).splitlines()[0]}") from err


def validate_dataset_folder(folder: Path) -> DatasetCheck:
    """The card parses as a Hub dataset card with configs, and `datasets` loads every split its configs name.
    Raises HubError (one line) otherwise."""
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    folder = Path(folder)
    readme = folder / "README.md"
    data = load_card(DatasetCard, readme, "rematerialize sft_dataset").data.to_dict()
    configs = data.get("configs") or []
    if not configs:
        raise HubError(f"{readme}: the front matter names no configs; the Hub would not know the splits")
    for key in ("license", "task_categories"):
        if not data.get(key):
            raise HubError(f"{readme}: the front matter has no {key}")
    data_files = {f["split"]: str(folder / f["path"]) for f in configs[0]["data_files"]}
    missing = [s for s, pattern in data_files.items() if not list(folder.glob(pattern[len(str(folder)) + 1:]))]
    if missing:
        raise HubError(f"{folder}: no files for split(s) {', '.join(missing)}; rematerialize sft_dataset")
    # A throwaway cache: validation must not leave Arrow copies of every release in the user's datasets cache.
    with tempfile.TemporaryDirectory(prefix="crucible-validate-") as cache, _quiet_datasets():
        try:
            loaded = load_dataset("parquet", data_files=data_files, cache_dir=cache)
        except Exception as err:
            raise HubError(f"{folder}: `datasets` cannot load the splits: {str(err).splitlines()[0]}") from err
    return DatasetCheck(splits={s: loaded[s].num_rows for s in loaded}, card=data)


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


def validate_model_folder(folder: Path) -> dict:
    """A checkpoint the Hub and transformers can use: a model card that parses, config.json (or a PEFT adapter's
    adapter_config.json), weights and a tokenizer. Returns the card's front matter; raises HubError (one line)."""
    from huggingface_hub import ModelCard

    folder = Path(folder)
    card = load_card(ModelCard, folder / "README.md", "retrain or write one")
    if not ((folder / "config.json").is_file() or (folder / "adapter_config.json").is_file()):
        raise HubError(f"{folder}: no config.json or adapter_config.json; not a model folder")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise HubError(f"{folder}: no weights (*.safetensors)")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise HubError(f"{folder}: no tokenizer files")
    return card.data.to_dict()


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def upload(folder: Path, repo_id: str, kind: str, token: str, private: bool, endpoint: str | None,
           message: str) -> tuple[str, str]:
    """Create the repo if needed and upload `folder` in one commit; (repo url, commit id)."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise HubError(f"hub repo id {repo_id!r} is not valid ({str(err).splitlines()[0]}); use 'namespace/name'; "
                       f"the staged folder is kept at {folder}") from err
    api = HfApi(endpoint=endpoint, token=token)
    try:
        repo = api.create_repo(repo_id, repo_type=kind, private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=kind,
                                   commit_message=message)
    except Exception as err:  # HTTP errors, auth, network: all end the same way for the user
        cause = " ".join(str(err).split())[:300]
        raise HubError(f"upload of {kind} {repo_id} failed: {cause}; the staged folder is kept at {folder} "
                       f"(check HF_TOKEN and the repo id, then rematerialize)") from err
    return str(repo), commit.oid


class HubPublisher(dg.ConfigurableResource):
    """The Hub, or a local staging folder when no token or repo is configured."""

    token: str | None = Field(default=None, description="HF_TOKEN; without it, folders are only staged.")
    dataset_repo: str | None = Field(default=None, description="namespace/name of the dataset repo.")
    model_repo: str | None = Field(default=None, description="namespace/name of the model repo.")
    private: bool = Field(default=True, description="Create repos private.")
    home: str | None = home_field()  # where folders are staged
    endpoint: str | None = Field(default=None, description="Hub endpoint (a mirror); empty: huggingface_hub's "
                                                           "default (HF_ENDPOINT).")

    @classmethod
    def configured(cls, home: Home, dataset_repo: str | None = None, public: bool = False) -> HubPublisher:
        """The Hub as a command configures it: its options first, then HF_TOKEN, CRUCIBLE_HUB_DATASET_REPO and
        HF_ENDPOINT; without a token, folders are staged under the home."""
        return cls(token=os.environ.get("HF_TOKEN"), private=not public, endpoint=os.environ.get("HF_ENDPOINT"),
                   dataset_repo=dataset_repo or os.environ.get("CRUCIBLE_HUB_DATASET_REPO"), home=str(home.root))

    def publish_dataset(self, folder: Path, name: str, message: str | None = None) -> PublishResult:
        staged = stage_folder(folder, DATASET, name, home=Home.from_env(self.home))
        validate_dataset_folder(staged)
        return self._publish(staged, DATASET, self.dataset_repo, message or f"Crucible dataset {name}")

    def publish_model(self, folder: Path, name: str, message: str | None = None) -> PublishResult:
        """A checkpoint folder, without the trainer's intermediate checkpoint-N folders."""
        staged = stage_folder(folder, MODEL, name, ignore=("checkpoint-*",), home=Home.from_env(self.home))
        validate_model_folder(staged)
        return self._publish(staged, MODEL, self.model_repo, message or f"Crucible model {name}")

    def _publish(self, staged: Path, kind: str, repo_id: str | None, message: str) -> PublishResult:
        files, size = folder_size(staged)
        if not (self.token and repo_id):
            return PublishResult("staged", staged, repo_id, files=files, bytes=size)
        url, commit = upload(staged, repo_id, kind, self.token, self.private, self.endpoint, message)
        return PublishResult("uploaded", staged, repo_id, url, commit, files, size)
