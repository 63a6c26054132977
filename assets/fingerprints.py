"""Config fingerprints: every generated row names the hash of the frozen configs, model names and prompt versions
that made it, and the home's configs/ folder keeps what each hash stands for (the dataset card prints it)."""

from __future__ import annotations

import hashlib
import json
import os

from resources.home import Home


def fingerprint(*parts) -> str:
    """12 hex of the sha256 of the canonical JSON of the parts (configs as dicts, model names, prompt versions)."""
    canonical = json.dumps([p.model_dump() if hasattr(p, "model_dump") else p for p in parts], sort_keys=True,
                           default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def record_config(fp: str, home: Home | None = None, **parts) -> str:
    """Keep what `fp` fingerprints as <home>/configs/<fp>.json, so a row's config_fingerprint can be turned back into
    its settings (the dataset card prints them). Idempotent; returns `fp`. `home`: the run's (default: the
    environment's, for interactive use)."""
    path = (home or Home.from_env()).configs / f"{fp}.json"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {k: v.model_dump() if hasattr(v, "model_dump") else v for k, v in parts.items()}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
        os.replace(tmp, path)
    return fp


def read_config(fp: str, home: Home | None = None) -> dict | None:
    """What record_config kept for `fp`, with fingerprints it names expanded recursively; None when unknown."""
    home = home or Home.from_env()
    path = home.configs / f"{fp}.json"
    if not path.is_file():
        return None
    payload = json.loads(path.read_text())
    return {k: (read_config(v, home) or v) if k.endswith("_fingerprint") else v for k, v in payload.items()}
