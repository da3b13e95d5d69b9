"""A minimal loopback stand-in for the GCS JSON API: the upload, download and list calls the client makes.

google-cloud-storage sends every request to ``STORAGE_EMULATOR_HOST`` when it is set, with anonymous
credentials. Only what the archive needs is served: multipart / media uploads, ``alt=media`` downloads,
object metadata and prefix listings (https://cloud.google.com/storage/docs/json_api/v1/objects).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class GcsStub:
    """Objects live in `self.objects[(bucket, name)] = (bytes, content_type)`; `self.requests` logs calls."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                stub._record(self)
                stub._upload(self)

            def do_GET(self) -> None:
                stub._record(self)
                stub._get(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> GcsStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ helpers
    def _record(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append((h.command, h.path))

    @staticmethod
    def _send_json(h: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=UTF-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _resource(bucket: str, name: str, data: bytes, content_type: str) -> dict:
        return {
            "kind": "storage#object", "bucket": bucket, "name": name, "id": f"{bucket}/{name}/1",
            "size": str(len(data)), "contentType": content_type, "generation": "1", "metageneration": "1",
            "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
        }

    def _upload(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query)
        segs = parts.path.split("/")  # /upload/storage/v1/b/<bucket>/o
        if segs[1:4] != ["upload", "storage", "v1"] or len(segs) < 7:
            return self._send_json(h, 404, {"error": {"code": 404, "message": "not found"}})
        bucket = unquote(segs[5])
        body = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        kind = query.get("uploadType", [""])[0]
        if kind == "multipart":
            raw = f"Content-Type: {h.headers['Content-Type']}\r\n\r\n".encode() + body
            msg = BytesParser(policy=HTTP).parsebytes(raw)
            meta_part, media_part = list(msg.iter_parts())
            meta = json.loads(meta_part.get_payload(decode=True))
            name, data = meta["name"], media_part.get_payload(decode=True)
            content_type = meta.get("contentType") or media_part.get_content_type()
        elif kind == "media":
            name, data = query["name"][0], body
            content_type = h.headers.get("Content-Type", "application/octet-stream")
        else:
            return self._send_json(h, 400, {"error": {"code": 400, "message": f"uploadType {kind!r}"}})
        with self._lock:
            self.objects[(bucket, name)] = (data, content_type)
        self._send_json(h, 200, self._resource(bucket, name, data, content_type))

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query)
        segs = parts.path.split("/")
        download = segs[1] == "download"
        if download:
            segs = segs[1:]
        # /storage/v1/b/<bucket>/o[/<name>]
        if segs[1:3] != ["storage", "v1"] or len(segs) < 5 or (len(segs) > 5 and segs[5] != "o"):
            return self._send_json(h, 404, {"error": {"code": 404, "message": "not found"}})
        bucket = unquote(segs[4]) if len(segs) > 4 else ""
        if len(segs) == 5 and bucket:  # bucket metadata, read by the client's bucket cache
            return self._send_json(h, 200, {"kind": "storage#bucket", "name": bucket, "id": bucket})
        if len(segs) == 6 or segs[6] == "":
            prefix = query.get("prefix", [""])[0]
            with self._lock:
                items = [self._resource(b, n, d, c) for (b, n), (d, c) in sorted(self.objects.items())
                         if b == bucket and n.startswith(prefix)]
            return self._send_json(h, 200, {"kind": "storage#objects", "items": items})
        name = unquote("/".join(segs[6:]))
        with self._lock:
            found = self.objects.get((bucket, name))
        if found is None:
            return self._send_json(h, 404, {"error": {"code": 404, "message": "No such object"}})
        data, content_type = found
        if download or query.get("alt") == ["media"]:
            h.send_response(200)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return None
        return self._send_json(h, 200, self._resource(bucket, name, data, content_type))
