"""A local HTTP server that speaks the part of the Hub API huggingface_hub uses to create a repo and upload a folder
in one commit, and records what it was sent, so upload tests check the real client's requests offline.

Endpoints: POST /api/repos/create, POST /api/validate-yaml, POST /api/{type}s/{repo}/preupload/{rev} (answers
"regular" for every file, so contents travel inside the commit), POST /api/{type}s/{repo}/commit/{rev} (ndjson).
`fail` maps an endpoint name (create, validate, preupload, commit) to an HTTP status the server answers instead.

    with HubStub() as hub:
        HfApi(endpoint=hub.url, token="t").upload_folder(...)
        hub.commits[0]["files"]   # path -> bytes
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ROUTES = [
    ("create", re.compile(r"^/api/repos/create$")),
    ("validate", re.compile(r"^/api/validate-yaml$")),
    ("preupload", re.compile(r"^/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/?]+)")),
    ("commit", re.compile(r"^/api/(?P<type>\w+)s/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/?]+)")),
]


class HubStub:
    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.fail = fail or {}
        self.requests: list[dict] = []  # every request: endpoint, path, auth header
        self.repos: list[dict] = []  # create payloads
        self.commits: list[dict] = []  # {"repo", "type", "revision", "header", "files": {path: bytes}}
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.handle(self, body)

            def do_GET(self) -> None:  # noqa: N802
                stub.reply(self, 404, {"error": "not part of the stub"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HubStub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path.split("?")[0]
        name, match = next(((n, m) for n, rx in _ROUTES if (m := rx.match(path))), (None, None))
        with self.lock:
            self.requests.append({"endpoint": name, "path": path,
                                  "authorization": handler.headers.get("Authorization")})
        if name is None:
            return self.reply(handler, 404, {"error": f"unknown endpoint {path}"})
        if name in self.fail:
            return self.reply(handler, self.fail[name], {"error": f"stub: {name} refused"})
        if name == "create":
            payload = json.loads(body)
            with self.lock:
                self.repos.append(payload)
            repo = "/".join(p for p in (payload.get("organization"), payload["name"]) if p)
            return self.reply(handler, 200, {"url": f"{self.url}/{payload.get('type', 'model')}s/{repo}"})
        if name == "validate":
            return self.reply(handler, 200, {"errors": [], "warnings": []})
        if name == "preupload":
            files = json.loads(body)["files"]
            return self.reply(handler, 200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None} for f in files]})
        return self.commit(handler, match, body)

    def commit(self, handler: BaseHTTPRequestHandler, match: re.Match, body: bytes) -> None:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line["key"] == "header"), {})
        files = {line["value"]["path"]: base64.b64decode(line["value"]["content"])
                 for line in lines if line["key"] == "file"}
        oid = hashlib.sha1(body).hexdigest()
        with self.lock:
            self.commits.append({"repo": match["repo"], "type": match["type"], "revision": match["rev"],
                                 "header": header, "files": files, "oid": oid, "other": [
                                     line["key"] for line in lines if line["key"] not in ("header", "file")]})
        self.reply(handler, 200, {"commitUrl": f"{self.url}/{match['type']}s/{match['repo']}/commit/{oid}",
                                  "commitOid": oid})
