"""Publishing folders (dataset releases and model checkpoints) to the Hugging Face Hub, or staging them offline.

    hub = HubPublisher(token=..., dataset_repo="me/crucible-sft", private=True)
    result = hub.publish_dataset(release_folder, name="crucible-sft", tag=version_tag(dataset_version))

Every folder is first staged under $CRUCIBLE_HOME/hub/<kind>s/<name>/ exactly as it will be uploaded (an earlier
staging of the same name is replaced whole, so a file the new release dropped is gone) and validated by
resources/hub_validate.py. Without a token or a repo id it stays there. With both, the staged folder is uploaded with
huggingface_hub in one commit (the repo is created first, private by configuration) whose deletions remove every
remote file matching the kind's OWNED patterns that the new folder lacks — files Crucible writes; anything else a
user added to the repo, and the card (always re-uploaded), stays — and the commit is tagged (`v-<dataset version>`
for a dataset, so `load_dataset(repo, revision="v-...")` loads that release; idempotent when the tag exists).

Tags are also recorded beside the staging, in $CRUCIBLE_HOME/hub/<kind>s/<name>.tags.json: tag -> the staged files'
sha256, the source folder (for a dataset, the release folder of that version, which stays) and the Hub commit when
uploaded. As on the Hub, a tag recorded once is never moved. A failed step raises HubError with one line that says
what failed and where the staged folder is; the folder stays.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.files import sha256_file
from resources.home import Home, home_field
from resources.hub_validate import README, inspect_dataset_folder, inspect_model_folder

DATASET, MODEL = "dataset", "model"
# Remote files each kind of upload owns: the ones matching these (fnmatch, `*` crosses folders) and absent from the
# new folder are deleted by the upload's commit. README.md is always part of the upload, so it is replaced, never
# deleted; huggingface_hub never deletes .gitattributes.
OWNED = {
    DATASET: ("data/*", "plots/*", "reports/*", "LICENSES.md"),
    MODEL: ("*.safetensors", "*.bin", "*.json", "*.jinja", "*.txt", "*.model", "adapter/*"),
}


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
    tag: str | None = None


def version_tag(version: str) -> str:
    """The Hub tag of a release version: `v-<version>`, characters a git ref refuses replaced by '-'."""
    return "v-" + re.sub(r"[^A-Za-z0-9._-]+", "-", version).strip("-.")


def staging_dir(kind: str, name: str, home: Home | None = None) -> Path:
    return (home or Home.from_env()).hub / f"{kind}s" / name


def tags_file(kind: str, name: str, home: Home | None = None) -> Path:
    """Where the tags of a staged (kind, name) are recorded: beside its folder, never inside (it is not uploaded)."""
    return staging_dir(kind, name, home).with_name(f"{name}.tags.json")


def stage_folder(source: Path, kind: str, name: str, ignore: tuple[str, ...] = (), home: Home | None = None,
                 card: str | None = None) -> Path:
    """Copy `source` (less files matching `ignore` globs; README.md replaced by `card` when given) to the staging
    folder for (kind, name), replacing an earlier staging of it whole (atomically: the copy is made beside it and
    renamed in place)."""
    source = Path(source)
    if not source.is_dir():
        raise HubError(f"cannot stage {kind} {name!r}: {source} is not a folder; materialize it first")
    dest = staging_dir(kind, name, home)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(*ignore) if ignore else None)
    if card is not None:
        (tmp / README).write_text(card)
    old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def read_tags(kind: str, name: str, home: Home | None = None) -> dict[str, dict]:
    """tag -> record ({"files": {path: sha256}, "source", "commit", "recorded_at"}) of a staged (kind, name)."""
    path = tags_file(kind, name, home)
    return json.loads(path.read_text()) if path.is_file() else {}


def record_tag(staged: Path, kind: str, name: str, tag: str, source: Path, commit: str | None,
               home: Home | None = None) -> dict:
    """Record `tag` for the staged folder's files unless it is recorded already (a tag is never moved; a tag first
    recorded offline gets the commit of its first upload); the tag's record."""
    tags = read_tags(kind, name, home)
    if tag not in tags or (commit and not tags[tag].get("commit")):
        if tag not in tags:
            tags[tag] = {"files": {p.relative_to(staged).as_posix(): sha256_file(p)
                                   for p in sorted(staged.rglob("*")) if p.is_file()},
                         "source": str(source), "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        tags[tag]["commit"] = commit
        path = tags_file(kind, name, home)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(tags, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    return tags[tag]


def _raise_first(folder: Path, problems: list[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise HubError(f"{folder}: {problems[0]}{more}")


def validate_dataset_folder(folder: Path) -> DatasetCheck:
    """The folder passes resources/hub_validate.py's dataset rules (the card, its licence and configs, and every
    split loading with `datasets`); its split rows and card. Raises HubError (one line, the first problem)."""
    report = inspect_dataset_folder(folder)
    _raise_first(Path(folder), report.problems)
    return DatasetCheck(splits=report.splits, card=report.card)


def validate_model_folder(folder: Path) -> dict:
    """The folder passes resources/hub_validate.py's model rules (card, licence, base model, model-index, config,
    weights, tokenizer); the card's front matter. Raises HubError (one line, the first problem)."""
    problems, card = inspect_model_folder(folder)
    _raise_first(Path(folder), problems)
    return card


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _cause(err: Exception) -> str:
    return " ".join(str(err).split())[:300]


def upload(folder: Path, repo_id: str, kind: str, token: str, private: bool, endpoint: str | None,
           message: str, tag: str | None = None) -> tuple[str, str]:
    """Create the repo if needed, upload `folder` in one commit that also deletes the remote files of OWNED[kind]
    the folder lacks, and tag that commit `tag` (kept if it exists); (repo url, commit id)."""
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
                                   commit_message=message, delete_patterns=list(OWNED[kind]))
    except Exception as err:  # HTTP errors, auth, network: all end the same way for the user
        raise HubError(f"upload of {kind} {repo_id} failed: {_cause(err)}; the staged folder is kept at {folder} "
                       f"(check HF_TOKEN and the repo id, then rematerialize)") from err
    if tag:
        try:
            api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type=kind, tag_message=message,
                           exist_ok=True)
        except Exception as err:
            raise HubError(f"tagging {kind} {repo_id} commit {commit.oid} as {tag} failed: {_cause(err)}; the "
                           f"upload itself succeeded, the staged folder is kept at {folder} (rematerialize to retry "
                           f"the tag)") from err
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
        """The Hub as a command configures it: its options first, then HF_TOKEN, CRUCIBLE_HUB_DATASET_REPO,
        CRUCIBLE_HUB_MODEL_REPO and HF_ENDPOINT; without a token, folders are staged under the home."""
        return cls(token=os.environ.get("HF_TOKEN"), private=not public, endpoint=os.environ.get("HF_ENDPOINT"),
                   dataset_repo=dataset_repo or os.environ.get("CRUCIBLE_HUB_DATASET_REPO"),
                   model_repo=os.environ.get("CRUCIBLE_HUB_MODEL_REPO"), home=str(home.root))

    def publish_dataset(self, folder: Path, name: str, message: str | None = None,
                        tag: str | None = None) -> PublishResult:
        """A release folder, tagged `tag` (see `version_tag`) on the Hub and in the staging's tag record."""
        home = Home.from_env(self.home)
        staged = stage_folder(folder, DATASET, name, home=home)
        validate_dataset_folder(staged)
        return self._publish(staged, DATASET, name, self.dataset_repo, message or f"Crucible dataset {name}", tag,
                             Path(folder), home)

    def publish_model(self, folder: Path, name: str, message: str | None = None, tag: str | None = None,
                      card: str | None = None) -> PublishResult:
        """A checkpoint folder, without the trainer's intermediate checkpoint-N folders; `card` replaces its
        README.md in the staged copy (the checkpoint folder itself is left as it is)."""
        home = Home.from_env(self.home)
        staged = stage_folder(folder, MODEL, name, ignore=("checkpoint-*",), home=home, card=card)
        validate_model_folder(staged)
        return self._publish(staged, MODEL, name, self.model_repo, message or f"Crucible model {name}", tag,
                             Path(folder), home)

    def _publish(self, staged: Path, kind: str, name: str, repo_id: str | None, message: str, tag: str | None,
                 source: Path, home: Home) -> PublishResult:
        files, size = folder_size(staged)
        if not (self.token and repo_id):
            if tag:
                record_tag(staged, kind, name, tag, source, None, home)
            return PublishResult("staged", staged, repo_id, files=files, bytes=size, tag=tag)
        url, commit = upload(staged, repo_id, kind, self.token, self.private, self.endpoint, message, tag)
        if tag:
            record_tag(staged, kind, name, tag, source, commit, home)
        return PublishResult("uploaded", staged, repo_id, url, commit, files, size, tag)
