"""Where the manual CSV inbox keeps its files: list, read and file away on ``file://`` or ``gs://``.

The inbox root is ``AI_USAGE_INBOX`` (settings.inbox()). Pending files sit directly in a kind's folder;
loaded ones go to ``<folder>/processed/<YYYY-MM-DD>/``, refused ones to ``<folder>/rejected/`` next to a
``<name>.reason.txt``. A file is claimed by what was listed — its GCS generation, or its size and
modification time on disk — so a file replaced while it was being loaded is neither read as a mix nor
moved away: it stays for the next run. Names starting with ``.`` or ``~$`` and names of unfinished
copies (``.part``, ``.tmp``, ``.crdownload``…) are not listed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ai_usage import settings

_SKIPPED_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download")
REASON_SUFFIX = ".reason.txt"


@dataclass(frozen=True)
class InboxFile:
    folder: str
    name: str
    uri: str
    size: int
    version: str         # claim token: GCS generation, or "<size>:<mtime_ns>" on disk

    @property
    def key(self) -> str:
        return f"{self.folder}/{self.name}"


def _pending_name(name: str) -> bool:
    return not (name.startswith((".", "~$")) or name.casefold().endswith(_SKIPPED_SUFFIXES))


class _FileBox:
    """``file://`` inbox: moves are renames inside the inbox folder (atomic on one filesystem)."""

    def __init__(self, root: Path):
        self.root = root

    def uri(self, key: str) -> str:
        return (self.root / key).as_uri()

    def list(self, folder: str) -> list[InboxFile]:
        base = self.root / folder
        if not base.is_dir():
            return []
        out = []
        for path in base.iterdir():
            if path.is_file() and _pending_name(path.name):
                st = path.stat()
                out.append(InboxFile(folder, path.name, path.as_uri(), st.st_size, f"{st.st_size}:{st.st_mtime_ns}"))
        return out

    def read(self, f: InboxFile) -> bytes | None:
        try:
            return (self.root / f.key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def write(self, key: str, data: bytes) -> None:
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def move(self, f: InboxFile, key: str) -> bool:
        """Rename `f` to `key`; False (and nothing moved) when it changed since it was listed."""
        src = self.root / f.key
        try:
            st = src.stat()
        except FileNotFoundError:
            return False
        if f"{st.st_size}:{st.st_mtime_ns}" != f.version:
            return False
        dest = self.root / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        return True


class _GcsBox:
    """``gs://`` inbox through the Google provider's client (connection `google_cloud_default`)."""

    def __init__(self, bucket: str, prefix: str, gcp_conn_id: str):
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.gcp_conn_id = gcp_conn_id
        self._client: Any = None

    @property
    def bucket(self) -> Any:
        if self._client is None:
            from airflow.providers.google.cloud.hooks.gcs import GCSHook

            self._client = GCSHook(gcp_conn_id=self.gcp_conn_id).get_conn()
        return self._client.bucket(self.bucket_name)

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{self._name(key)}"

    def list(self, folder: str) -> list[InboxFile]:
        prefix = self._name(folder) + "/"
        out = []
        for blob in self.bucket.list_blobs(prefix=prefix, delimiter="/"):
            rest = blob.name[len(prefix):]
            if rest and "/" not in rest and _pending_name(rest):
                out.append(InboxFile(folder, rest, self.uri(f"{folder}/{rest}"), int(blob.size or 0),
                                     str(blob.generation)))
        return out

    def read(self, f: InboxFile) -> bytes | None:
        from google.api_core import exceptions as gexc

        try:
            return self.bucket.blob(self._name(f.key)).download_as_bytes(if_generation_match=int(f.version))
        except (gexc.PreconditionFailed, gexc.NotFound):
            return None

    def exists(self, key: str) -> bool:
        return bool(self.bucket.blob(self._name(key)).exists())

    def write(self, key: str, data: bytes) -> None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        self.bucket.blob(self._name(key)).upload_from_string(
            data, content_type="text/plain; charset=utf-8", timeout=120, retry=DEFAULT_RETRY)

    def move(self, f: InboxFile, key: str) -> bool:
        """Server-side copy of the claimed generation, then delete it; False when it changed meanwhile."""
        from google.api_core import exceptions as gexc

        bucket = self.bucket
        source = bucket.blob(self._name(f.key))
        try:
            bucket.copy_blob(source, bucket, self._name(key), source_generation=int(f.version))
            source.delete(if_generation_match=int(f.version))
        except (gexc.PreconditionFailed, gexc.NotFound):
            return False
        return True


class Inbox:
    """List, read and file away the CSV files of the configured inbox (``AI_USAGE_INBOX``)."""

    def __init__(self, location: settings.Location | None = None, *, gcp_conn_id: str = settings.GOOGLE_CONN_ID):
        self.location = location if location is not None else settings.inbox()
        if isinstance(self.location, settings.GcsLocation):
            self._box: _FileBox | _GcsBox = _GcsBox(self.location.bucket, self.location.prefix, gcp_conn_id)
        else:
            self._box = _FileBox(self.location.path)

    def uri(self, key: str) -> str:
        return self._box.uri(key)

    def pending(self, folder: str) -> list[InboxFile]:
        """Files waiting directly in `folder` (not in processed/ or rejected/), in name order."""
        return sorted(self._box.list(folder), key=lambda f: f.name)

    def read(self, f: InboxFile) -> bytes | None:
        """The file's bytes; None when it is gone or was replaced since it was listed."""
        return self._box.read(f)

    def move_processed(self, f: InboxFile, day: date, sha256: str) -> str | None:
        """Move a loaded file to ``processed/<day>/``; a different file of that name there keeps its place."""
        folder = f"{f.folder}/processed/{day.isoformat()}"
        key = f"{folder}/{f.name}"
        if self._box.exists(key):
            stem, ext = os.path.splitext(f.name)
            key = f"{folder}/{stem}-{sha256[:8]}{ext}"
        return self.uri(key) if self._box.move(f, key) else None

    def move_rejected(self, f: InboxFile, reason: str) -> str | None:
        """Move a refused file to ``rejected/`` and write the reason next to it (``<name>.reason.txt``)."""
        key = f"{f.folder}/rejected/{f.name}"
        self._box.write(key + REASON_SUFFIX, reason.encode("utf-8"))
        return self.uri(key) if self._box.move(f, key) else None
