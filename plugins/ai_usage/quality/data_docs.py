"""Publish a run's GX Data Docs (static HTML) next to the raw archive: ``<AI_USAGE_ARCHIVE>/data_docs/<run_id>/``.

GX renders into a local folder; this module copies it to the archive location, so the same code serves
``file://`` (local, docker-compose) and ``gs://`` (Composer: uploaded with the Google provider's GCSHook
and connection ``google_cloud_default``; open the objects through the Cloud console or a bucket served
as a static site). The bundled web fonts (~4 MB per run) are left out: the pages fall back to system fonts.
"""

from __future__ import annotations

import logging
import mimetypes
import shutil
from pathlib import Path

from ai_usage import settings
from ai_usage.archive import safe_run_id

log = logging.getLogger(__name__)

FOLDER = "data_docs"
_SKIP = ("static/fonts/",)


def _files(root: Path) -> list[tuple[Path, str]]:
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(_SKIP):
            out.append((path, rel))
    return out


def publish(local_dir: Path, run_id: str, location: settings.Location | None = None,
            *, gcp_conn_id: str = settings.GOOGLE_CONN_ID) -> str:
    """Copy the rendered site to the archive location; return the URI of its index.html."""
    location = location if location is not None else settings.archive()
    files = _files(local_dir)
    folder = f"{FOLDER}/{safe_run_id(run_id)}"
    if isinstance(location, settings.GcsLocation):
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        bucket = GCSHook(gcp_conn_id=gcp_conn_id).get_conn().bucket(location.bucket)
        prefix = f"{location.prefix}/{folder}" if location.prefix else folder
        for path, rel in files:
            content_type = mimetypes.guess_type(rel)[0] or "application/octet-stream"
            bucket.blob(f"{prefix}/{rel}").upload_from_filename(str(path), content_type=content_type, timeout=120)
        uri = f"gs://{location.bucket}/{prefix}/index.html"
    else:
        target = location.path / folder
        if target.exists():
            shutil.rmtree(target)  # a retry of the same run replaces its docs
        for path, rel in files:
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        uri = (target / "index.html").as_uri()
    log.info("Data Docs of run %s: %s (%d files)", run_id, uri, len(files))
    return uri
