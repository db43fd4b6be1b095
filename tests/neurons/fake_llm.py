"""A fake OpenAI-compatible chat server on loopback, for the LLM path: it records requests and answers by rule."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    """``mode``: "ok" (answers by rule), "malformed" (JSON without choices), "slow" (sleeps), "flaky" (HTTP 500 for the
    first ``failures`` requests), "down" (HTTP 503 always), "unauthorised" (HTTP 401)."""

    def __init__(self, mode: str = "ok", *, delay: float = 3.0, failures: int = 1, word: str = "the") -> None:
        self.mode, self.delay, self.failures, self.word = mode, delay, failures, word
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                status, payload = fake.answer(self.path, body)
                if fake.mode == "slow":
                    time.sleep(fake.delay)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, body: dict) -> tuple[int, object]:
        if path != "/v1/chat/completions":
            return 404, {"error": "not found"}
        if self.mode == "unauthorised":
            return 401, {"error": "bad key"}
        if self.mode == "down" or (self.mode == "flaky" and len(self.requests) <= self.failures):
            return 500 if self.mode == "flaky" else 503, {"error": "busy"}
        if self.mode == "malformed":
            return 200, b'{"result": "no choices here"'
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": self.reply(body["messages"][-1]["content"])}}]}

    def reply(self, prompt: str) -> str:
        if prompt.startswith("Here are the texts"):
            marked = re.findall(r"<<([^>]+)>>", prompt)
            top = max(set(marked), key=marked.count) if marked else "nothing"
            return f'Explanation: the token "{top}".'
        quoted = re.findall(r'"([^"]+)"', prompt.split("\n")[0])
        lines = re.findall(r"^\d+\. (.*)$", prompt, flags=re.MULTILINE)
        if "Are the marked" in prompt:
            return json.dumps([int(bool(quoted) and set(re.findall(r"<<([^>]+)>>", line)) <= set(quoted)) for line in lines])
        return json.dumps([int(any(q in line.split() for q in quoted)) for line in lines])
