"""A real local HTTP server for the HTTP node's tests and benchmark (stdlib, one thread per request)."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["LocalServer"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a pooled client reuses its connection
    # one write per response, sent at once: headers and body in two small packets would wait
    # for the client's delayed ACK (40 ms a request)
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if raw is None and body is not None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        srv = self.server
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with srv.lock:
            srv.hits[path] = srv.hits.get(path, 0) + 1
            hits = srv.hits[path]
            srv.log.append((self.command, self.path, dict(self.headers), body))
        seg = path.strip("/").split("/")
        if seg[0] == "fast":
            self._send(200, raw=b'{"ok":true}', headers={"Content-Type": "application/json"})
        elif seg[0] == "echo":
            self._send(200, {
                "method": self.command,
                "raw_path": parts.path,
                "query": {k: v[0] for k, v in query.items()},
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode() if body else None,
            })
        elif seg[0] == "status":
            code = int(seg[1])
            headers = {"Retry-After": query["retry_after"][0]} if "retry_after" in query else {}
            self._send(code, {"error": f"status {code}"}, headers)
        elif seg[0] == "flaky":  # /flaky/<name>/<failures>/<code>: fails N times, then answers
            fails, code = int(seg[2]), int(seg[3])
            if hits <= fails:
                self._send(code, {"error": "try again"}, {"Retry-After": "0"} if code == 429 else {})
            else:
                self._send(200, {"hits": hits})
        elif seg[0] == "slow":
            time.sleep(float(seg[1]))
            self._send(200, {"slept": True})
        elif seg[0] == "badjson":
            self._send(200, raw=b"{not json", headers={"Content-Type": "application/json"})
        elif seg[0] == "text":
            self._send(200, raw=b"plain words", headers={"Content-Type": "text/plain"})
        elif seg[0] == "token":
            auth = self.headers.get("Authorization", "")
            ok = auth == "Basic " + base64.b64encode(b"app:s3cret").decode()
            form = parse_qs(body.decode())
            if not ok or form.get("grant_type") != ["client_credentials"]:
                self._send(401, {"error": "invalid_client"})
                return
            with srv.lock:
                srv.tokens += 1
                tok = f"tok-{srv.tokens}"
                srv.valid_tokens.add(tok)
            self._send(200, {"access_token": tok, "token_type": "bearer", "expires_in": int(query.get("ttl", ["3600"])[0])})
        elif seg[0] == "protected":
            auth = self.headers.get("Authorization", "")
            tok = auth.removeprefix("Bearer ")
            if tok not in srv.valid_tokens:
                self._send(401, {"error": "bad token"})
            else:
                self._send(200, {"token": tok})
        elif seg[0] == "pages":  # ?page=N, 3 pages of 2 items, then empty
            page = int(query.get("page", ["1"])[0])
            items = [f"p{page}-{i}" for i in range(2)] if page <= 3 else []
            self._send(200, {"items": items})
        elif seg[0] == "elsewhere":  # a next link to another origin
            self._send(200, {"data": [0], "next": "http://evil.invalid/steal"})
        elif seg[0] == "linked":  # /linked/<n>: next link in header and body up to 3
            n = int(seg[1])
            nxt = f"/linked/{n + 1}" if n < 3 else None
            headers = {"Link": f'<{nxt}>; rel="next"'} if nxt else {}
            self._send(200, {"data": [n], "next": nxt}, headers)
        else:
            self._send(404, {"error": "not found"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.hits: dict[str, int] = {}
        self.log: list[Any] = []
        self.tokens = 0
        self.valid_tokens: set[str] = set()


class LocalServer:
    """``with LocalServer() as srv: srv.url("/echo")``."""

    def __init__(self) -> None:
        self.server = _Server()
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
