"""A local stand-in for the Hugging Face Hub and the release download servers, on 127.0.0.1.

`HubServer(folder)` serves `folder/<org>/<repo>/…` through the API huggingface_hub uses when `HF_ENDPOINT` (or
`endpoint=`) points at it: `GET /api/models/<repo>/revision/<rev>` (the commit), `GET /api/models/<repo>/tree/<rev>`
(the file list, LFS files with their sha256), `HEAD|GET /<repo>/resolve/<rev>/<file>` (ETag, X-Repo-Commit, range
requests); and `folder/files/<name>` as plain URLs at `/files/<name>`. Faults for the failure tests:
`cut_after(path, n)` ends the next responses for a path after n bytes (the connection drops mid-body), `fail(path)`
answers 503, `corrupt(path)` serves the file with one byte flipped while the tree still lists the true digest.
Every request is logged as (method, path, Range header).
"""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _git_oid(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.log: list[tuple[str, str, str | None]] = []
        self._faults: dict[str, list[tuple[str, int]]] = {}
        self._corrupt: set[str] = set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):        # keep the test output clean
                pass

            def do_HEAD(self):
                server._handle(self, body=False)

            def do_GET(self):
                server._handle(self, body=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "HubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- faults -----------------------------------------------------------------------------------------------
    def cut_after(self, path: str, n: int) -> None:
        with self._lock:
            self._faults.setdefault(path, []).append(("cut", n))

    def fail(self, path: str) -> None:
        with self._lock:
            self._faults.setdefault(path, []).append(("503", 0))

    def corrupt(self, path: str) -> None:
        self._corrupt.add(path)

    def heal(self) -> None:
        with self._lock:
            self._faults.clear()
            self._corrupt.clear()

    def requests_for(self, path: str) -> list[tuple[str, str, str | None]]:
        return [r for r in self.log if r[1] == path]

    # -- routing ----------------------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = unquote(urlsplit(h.path).path)
        self.log.append((h.command, path, h.headers.get("Range")))
        fault = None
        with self._lock:
            if body and self._faults.get(path):
                fault = self._faults[path].pop(0)
        if fault and fault[0] == "503":
            return self._send(h, 503, b"busy", body=body)
        if path.startswith("/api/models/"):
            return self._api(h, path[len("/api/models/"):], body=body)
        if path.startswith("/files/"):
            return self._file(h, path, self.folder / "files" / path[len("/files/"):], body=body,
                              cut=fault and fault[1])
        if "/resolve/" in path:
            repo, rest = path.lstrip("/").split("/resolve/", 1)
            return self._file(h, path, self.folder / repo / rest.split("/", 1)[1], body=body, repo=True,
                              cut=fault and fault[1])
        self._send(h, 404, b"not found", body=body)

    def _api(self, h, rest: str, *, body: bool) -> None:
        for kind in ("/revision/", "/tree/"):
            if kind in rest:
                repo = rest.split(kind, 1)[0]
                break
        else:
            return self._send(h, 404, b"{}", body=body)
        root = self.folder / repo
        if not root.is_dir():
            return self._send(h, 404, json.dumps({"error": "Repository not found"}).encode(), body=body,
                              headers={"X-Error-Code": "RepoNotFound"})
        files = sorted(p for p in root.rglob("*") if p.is_file())
        if kind == "/revision/":
            info = {"id": repo, "modelId": repo, "sha": COMMIT, "private": False,
                    "siblings": [{"rfilename": p.relative_to(root).as_posix()} for p in files]}
            return self._send(h, 200, json.dumps(info).encode(), body=body, ctype="application/json")
        entries = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d.relative_to(root).as_posix()}
                   for d in sorted(p for p in root.rglob("*") if p.is_dir())]
        for p in files:
            e = {"type": "file", "oid": _git_oid(p), "size": p.stat().st_size, "path": p.relative_to(root).as_posix()}
            if p.suffix in LFS_SUFFIXES:
                e["lfs"] = {"oid": _sha256(p), "size": p.stat().st_size, "pointerSize": 134}
            entries.append(e)
        self._send(h, 200, json.dumps(entries).encode(), body=body, ctype="application/json")

    def _file(self, h, path: str, f: Path, *, body: bool, repo: bool = False, cut: int | None = None) -> None:
        if not f.is_file():
            return self._send(h, 404, b"not found", body=body, headers={"X-Error-Code": "EntryNotFound"})
        data = f.read_bytes()
        etag = _sha256(f) if f.suffix in LFS_SUFFIXES else _git_oid(f)
        if path in self._corrupt:
            data = data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:]
        headers = {"ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if repo:
            headers["X-Repo-Commit"] = COMMIT
        start, status = 0, 200
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[len("bytes="):].split("-")[0] or 0)
            if start >= len(data):
                return self._send(h, 416, b"", body=body, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._send(h, status, data[start:], body=body, headers=headers, cut=cut)

    @staticmethod
    def _send(h, status: int, data: bytes, *, body: bool, headers: dict | None = None,
              ctype: str = "application/octet-stream", cut: int | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if cut is not None:
            h.send_header("Connection", "close")
        h.end_headers()
        if not body:
            return
        if cut is None:
            h.wfile.write(data)
            return
        h.wfile.write(data[:cut])             # then drop the connection mid-body
        h.wfile.flush()
        h.close_connection = True
        try:
            h.connection.shutdown(2)
        except OSError:
            pass
