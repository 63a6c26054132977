"""A local HTTP server that speaks the part of the Hub API huggingface_hub uses to create a repo, upload a folder in
one commit (with deletions), tag a commit, and download a snapshot; it keeps every repo's commits, branch head and
tags and records what it was sent, so upload and download tests use the real client offline.

Endpoints: POST /api/repos/create, POST /api/validate-yaml, POST /api/{type}s/{repo}/preupload/{rev} (answers
"regular" for every file, so contents travel inside the commit), POST /api/{type}s/{repo}/commit/{rev} (ndjson;
`file`, `deletedFile` and `deletedFolder` lines are applied), POST /api/{type}s/{repo}/tag/{rev} (409 when the tag
exists), GET /api/{type}s/{repo}[/revision/{rev}] (repo info), GET /api/{type}s/{repo}/tree/{rev} (the files),
HEAD/GET /[{type}s/]{repo}/resolve/{rev}/{path} (a file, with X-Repo-Commit and ETag). A revision is `main`, a tag
or a commit id. `fail` maps an endpoint name (create, validate, preupload, commit, tag, info, tree, resolve) to an
HTTP status the server answers instead.

    with HubStub() as hub:
        HfApi(endpoint=hub.url, token="t").upload_folder(...)
        hub.commits[0]["files"]          # path -> bytes sent in that commit
        hub.files("me/data", "dataset")  # path -> bytes at the head of main (or revision=tag/commit)
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

_REPO = r"(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)"
_ROUTES = [
    ("POST", "create", re.compile(r"^/api/repos/create$")),
    ("POST", "validate", re.compile(r"^/api/validate-yaml$")),
    ("POST", "preupload", re.compile(rf"^/api/{_REPO}/preupload/(?P<rev>[^/?]+)")),
    ("POST", "commit", re.compile(rf"^/api/{_REPO}/commit/(?P<rev>[^/?]+)")),
    ("POST", "tag", re.compile(rf"^/api/{_REPO}/tag/(?P<rev>[^/?]+)$")),
    ("GET", "tree", re.compile(rf"^/api/{_REPO}/tree/(?P<rev>[^/?]+)(?:/(?P<path>.+))?$")),
    ("GET", "info", re.compile(rf"^/api/{_REPO}(?:/revision/(?P<rev>[^/?]+))?$")),
    ("GET", "resolve", re.compile(r"^/(?:(?P<type>dataset|space)s/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/"
                                  r"(?P<path>.+)$")),
]


def blob_id(data: bytes) -> str:
    """git's blob id, as the Hub gives it for a file that is not in LFS."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubStub:
    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.fail = fail or {}
        self.requests: list[dict] = []  # every request: endpoint, method, path, auth header
        self.repos: list[dict] = []  # create payloads
        self.commits: list[dict] = []  # {"repo", "type", "revision", "header", "files", "deleted", "oid", "other"}
        self.tags: list[dict] = []  # create-tag requests: {"repo", "type", "revision", "tag", "message", "status"}
        self.state: dict[tuple[str, str], dict] = {}  # (type, repo) -> {"main", "snapshots": {oid: files}, "tags"}
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.handle(self, "POST", body)

            def do_GET(self) -> None:  # noqa: N802
                stub.handle(self, "GET", b"")

            def do_HEAD(self) -> None:  # noqa: N802
                stub.handle(self, "HEAD", b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HubStub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- state ---------------------------------------------------------------------------------------------------

    def _repo(self, kind: str, repo: str) -> dict:
        return self.state.setdefault((kind, repo), {"main": None, "snapshots": {}, "tags": {}})

    def resolve(self, kind: str, repo: str, revision: str) -> str | None:
        """The commit id a revision (main, a tag, a commit id) names; None when unknown."""
        state = self.state.get((kind, repo))
        if state is None:
            return None
        revision = unquote(revision)
        if revision == "main":
            return state["main"]
        return state["tags"].get(revision) or (revision if revision in state["snapshots"] else None)

    def files(self, repo: str, kind: str = "model", revision: str = "main") -> dict[str, bytes]:
        """path -> bytes of the repo at `revision` ({} for an empty or unknown one)."""
        with self.lock:
            oid = self.resolve(kind, repo, revision)
            return dict(self.state[(kind, repo)]["snapshots"][oid]) if oid else {}

    def tag_names(self, repo: str, kind: str = "model") -> dict[str, str]:
        """tag -> commit id."""
        with self.lock:
            return dict(self.state.get((kind, repo), {}).get("tags", {}))

    # --- HTTP ----------------------------------------------------------------------------------------------------

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, status: int, payload, headers: dict | None = None,
              body: bool = True) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/octet-stream" if isinstance(payload, bytes)
                            else "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def not_found(self, handler: BaseHTTPRequestHandler, code: str, message: str, method: str) -> None:
        self.reply(handler, 404, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message},
                   body=method != "HEAD")

    def handle(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        path = handler.path.split("?")[0]
        query = handler.path.partition("?")[2]
        route = "GET" if method == "HEAD" else method
        name, match = next(((n, m) for verb, n, rx in _ROUTES if verb == route and (m := rx.match(path))),
                           (None, None))
        with self.lock:
            self.requests.append({"endpoint": name, "method": method, "path": path,
                                  "authorization": handler.headers.get("Authorization")})
        if name is None:
            return self.reply(handler, 404, {"error": f"unknown endpoint {method} {path}"}, body=method != "HEAD")
        if name in self.fail:
            return self.reply(handler, self.fail[name], {"error": f"stub: {name} refused"}, body=method != "HEAD")
        if name == "create":
            payload = json.loads(body)
            repo = "/".join(p for p in (payload.get("organization"), payload["name"]) if p)
            with self.lock:
                self.repos.append(payload)
                self._repo(payload.get("type", "model"), repo)
            return self.reply(handler, 200, {"url": f"{self.url}/{payload.get('type', 'model')}s/{repo}"})
        if name == "validate":
            return self.reply(handler, 200, {"errors": [], "warnings": []})
        if name == "preupload":
            files = json.loads(body)["files"]
            return self.reply(handler, 200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None} for f in files]})
        if name == "commit":
            return self.commit(handler, match, body)
        if name == "tag":
            return self.tag(handler, match, body)
        kind, repo = match["type"] or "model", match["repo"]
        with self.lock:
            oid = self.resolve(kind, repo, match["rev"] or "main")
            known = (kind, repo) in self.state
            snapshot = dict(self.state[(kind, repo)]["snapshots"].get(oid, {})) if oid else {}
        if not known:
            return self.not_found(handler, "RepoNotFound", f"no {kind} repo {repo}", method)
        if oid is None and (name == "resolve" or match["rev"] not in (None, "main")):
            return self.not_found(handler, "RevisionNotFound", f"no revision {match['rev']} in {repo}", method)
        if name == "info":
            return self.reply(handler, 200, {"id": repo, "sha": oid, "private": False,
                                             "siblings": [{"rfilename": p} for p in sorted(snapshot)]})
        if name == "tree":
            return self.reply(handler, 200, self.tree(snapshot, match["path"] or "", "recursive=true" in query
                                                      or "recursive=True" in query))
        file = unquote(match["path"])
        if file not in snapshot:
            return self.not_found(handler, "EntryNotFound", f"no file {file} in {repo}@{match['rev']}", method)
        data = snapshot[file]
        self.reply(handler, 200, data, {"X-Repo-Commit": oid, "ETag": f'"{blob_id(data)}"'}, body=method != "HEAD")

    @staticmethod
    def tree(snapshot: dict[str, bytes], under: str, recursive: bool) -> list[dict]:
        prefix = f"{under.strip('/')}/" if under else ""
        entries, folders = [], set()
        for path in sorted(p for p in snapshot if p.startswith(prefix)):
            rest = path[len(prefix):]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            entries.append({"type": "file", "path": path, "size": len(snapshot[path]), "oid": blob_id(snapshot[path])})
        return [{"type": "directory", "path": f, "oid": blob_id(f.encode())} for f in sorted(folders)] + entries

    def commit(self, handler: BaseHTTPRequestHandler, match: re.Match, body: bytes) -> None:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line["key"] == "header"), {})
        files = {line["value"]["path"]: base64.b64decode(line["value"]["content"])
                 for line in lines if line["key"] == "file"}
        deleted = [line["value"]["path"] for line in lines if line["key"] in ("deletedFile", "deletedFolder")]
        oid = hashlib.sha1(body).hexdigest()
        with self.lock:
            state = self._repo(match["type"], match["repo"])
            tree = dict(state["snapshots"].get(state["main"], {}))
            for path in deleted:
                tree = {p: b for p, b in tree.items() if p != path and not p.startswith(path.rstrip("/") + "/")}
            state["snapshots"][oid] = {**tree, **files}
            state["main"] = oid
            self.commits.append({"repo": match["repo"], "type": match["type"], "revision": match["rev"],
                                 "header": header, "files": files, "deleted": deleted, "oid": oid, "other": [
                                     line["key"] for line in lines
                                     if line["key"] not in ("header", "file", "deletedFile", "deletedFolder")]})
        self.reply(handler, 200, {"commitUrl": f"{self.url}/{match['type']}s/{match['repo']}/commit/{oid}",
                                  "commitOid": oid})

    def tag(self, handler: BaseHTTPRequestHandler, match: re.Match, body: bytes) -> None:
        payload = json.loads(body or b"{}")
        kind, repo, tag = match["type"], match["repo"], payload.get("tag")
        with self.lock:
            oid = self.resolve(kind, repo, match["rev"])
            state = self.state.get((kind, repo))
            status = 404 if oid is None else 409 if tag in state["tags"] else 200
            if status == 200:
                state["tags"][tag] = oid
            self.tags.append({"repo": repo, "type": kind, "revision": unquote(match["rev"]), "tag": tag,
                              "message": payload.get("message"), "status": status})
        if status == 404:
            return self.not_found(handler, "RevisionNotFound", f"no revision {match['rev']} in {repo}", "POST")
        if status == 409:
            return self.reply(handler, 409, {"error": f"tag {tag} already exists"})
        self.reply(handler, 200, {})
