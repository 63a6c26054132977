"""A small OpenAI-compatible chat server for tests and benchmarks, with a fixed latency and injected faults.

The answer to a prompt is a deterministic function of it (`expected_answer`), so a client's results can be checked.
Faults are planned per distinct prompt: the first attempts at a prompt fail in the ways listed in `faults`
(for example ["429", "500", "hang", "truncated", "drop", "garbage"]), later attempts succeed. Every request is logged.

    python tests/openai_stub_server.py --port 8765 --latency 0.2     # run by hand
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def expected_answer(messages: list[dict]) -> str:
    last = messages[-1]["content"]
    return f"answer to {last!r}: {hashlib.sha256(last.encode()).hexdigest()[:12]}"


class StubState:
    def __init__(self, latency_s: float = 0.0, faults: list[str] | None = None, hang_s: float = 30.0,
                 retry_after: str | None = "0.05", responder=None) -> None:
        self.latency_s, self.faults, self.hang_s, self.retry_after = latency_s, faults or [], hang_s, retry_after
        # responder(messages) -> reply text: a scripted model (tests of the generation stages); default expected_answer
        self.responder = responder or expected_answer
        self.lock = threading.Lock()
        self.attempts: Counter = Counter()  # prompt -> requests seen
        self.served: Counter = Counter()  # prompt -> successful answers sent
        self.log: list[tuple[str, str]] = []  # (prompt, outcome)
        self.answered: Counter = Counter()  # sha256 of the whole request body -> answers sent
        self.in_flight = 0
        self.max_in_flight = 0

    def plan(self, prompt: str) -> str:
        with self.lock:
            n = self.attempts[prompt]
            self.attempts[prompt] += 1
            outcome = self.faults[n] if n < len(self.faults) else "ok"
            self.log.append((prompt, outcome))
            if outcome == "ok":
                self.served[prompt] += 1
            return outcome

    @property
    def total_requests(self) -> int:
        return len(self.log)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's delayed ACK adds ~40 ms.
    disable_nagle_algorithm = True
    state: StubState

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]}).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        with self.state.lock:
            self.state.in_flight += 1
            self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
        try:
            self._chat()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on a hung request: expected in fault tests
        finally:
            with self.state.lock:
                self.state.in_flight -= 1

    def _chat(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        messages = body["messages"]
        prompt = messages[-1]["content"]
        outcome = self.state.plan(prompt)
        time.sleep(self.state.latency_s)
        if outcome == "429":
            headers = {"Retry-After": self.state.retry_after} if self.state.retry_after else {}
            return self._send(429, b'{"error": {"message": "slow down"}}', headers)
        if outcome == "400":
            return self._send(400, b'{"error": {"message": "bad request"}}')
        if outcome == "500":
            return self._send(500, b'{"error": {"message": "boom"}}')
        if outcome == "hang":
            time.sleep(self.state.hang_s)
            return self._send(504, b'{"error": {"message": "late"}}')
        if outcome == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        answer = self.state.responder(messages)
        with self.state.lock:
            self.state.answered[hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()] += 1
        payload = json.dumps({
            "id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(answer.split()),
                      "total_tokens": len(prompt.split()) + len(answer.split())},
        }).encode()
        if outcome == "truncated":
            # Promise the whole body, send half of it, and hang up.
            self.close_connection = True
            self._send(200, payload[: len(payload) // 2], length=len(payload))
            self.connection.shutdown(2)
            return None
        if outcome == "garbage":
            return self._send(200, b'{"choices": "not a list", "oops": ')
        return self._send(200, payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # listen backlog: read in __init__, so it must be a class attribute


class StubServer:
    """Context manager: a ThreadingHTTPServer on `host` (default 127.0.0.1) with a free port; `base_url` ends in
    /v1."""

    def __init__(self, state: StubState | None = None, port: int = 0, host: str = "127.0.0.1") -> None:
        self.state = state or StubState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = _Server((host, port), handler)
        self.base_url = f"http://{host}:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--faults", nargs="*", default=[])
    args = parser.parse_args()
    server = StubServer(StubState(args.latency, args.faults), args.port)
    print(server.base_url, flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
