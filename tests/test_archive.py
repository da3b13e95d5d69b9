"""The raw archive on file:// and on gs:// (a loopback stub of the GCS JSON API via STORAGE_EMULATOR_HOST)."""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from ai_usage import archive as archive_mod
from ai_usage.archive import RawArchive, object_key, response_body_bytes, safe_run_id
from ai_usage.settings import FileLocation
from tests._alert_receivers import HttpReceiver
from tests._gcs_stub import GcsStub

RUN_ID = "scheduled__2026-01-02T00:00:00+00:00"
DAY = date(2026, 1, 2)
# Non-ASCII, a float written as 1025.0, odd spacing and key order: all must survive byte for byte.
BODY = ('{"data": [{"email": "zoë@example.com", "spendCents": 1025.0, "note": "€ naïve — ✓",'
        '  "big": 12345678901234567890, "exp": 1E3}],\n "has_more": false}\n').encode()


@pytest.fixture(autouse=True)
def _airflow_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path_factory.getbasetemp() / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@pytest.fixture
def arch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RawArchive:
    # Four slashes: an absolute path (settings' SQLAlchemy-style rule).
    monkeypatch.setenv("AI_USAGE_ARCHIVE", f"file:///{tmp_path / 'archive'}")
    return RawArchive()


def raw_text(uri: str) -> str:
    """The stored object, decompressed, as text: what an auditor (or a leak) would see."""
    return gzip.decompress(Path(uri.removeprefix("file://")).read_bytes()).decode("utf-8")


def test_file_round_trip_keeps_the_body_byte_for_byte(arch: RawArchive, tmp_path: Path) -> None:
    request = {"method": "POST", "url": "https://api.cursor.com/teams/spend", "json": {"page": 1, "pageSize": 100}}
    uri = arch.put("cursor", "spend", DAY, RUN_ID, 1, request, BODY, status=200,
                   response_headers={"Content-Type": "application/json", "x-request-id": "req_1"})

    expected = tmp_path / "archive" / "cursor" / "spend" / "2026-01-02" / "scheduled__2026-01-02T00_00_00_00_00-1.json.gz"
    assert uri == expected.as_uri()
    assert expected.is_file()
    doc = arch.read(uri)
    assert response_body_bytes(doc) == BODY
    assert doc["response"]["body"] == BODY.decode("utf-8")
    assert '"spendCents": 1025.0' in doc["response"]["body"]
    assert doc["response"] == {"status": 200, "headers": {"Content-Type": "application/json", "x-request-id": "req_1"},
                               "body": BODY.decode("utf-8")}
    assert doc["request"] == request
    assert doc["run_id"] == RUN_ID and doc["day"] == "2026-01-02" and doc["n"] == 1
    assert doc["source"] == "cursor" and doc["endpoint"] == "spend"
    assert datetime.fromisoformat(doc["archived_at"]).tzinfo is not None and doc["archived_at"].endswith("Z")
    # The file itself is gzip of UTF-8 JSON (no ASCII escaping of the vendor's text).
    assert "zoë@example.com" in raw_text(uri)


def test_archives_are_standard_gzip_and_earlier_zlib_archives_still_read(arch: RawArchive) -> None:
    """Objects are compressed with ISA-L (fast) but stay plain gzip for every reader; objects written by
    earlier versions with zlib read back the same."""
    uri = arch.put("cursor", "spend", DAY, RUN_ID, 1, {"method": "POST"}, BODY, status=200)
    path = Path(uri.removeprefix("file://"))
    stored = path.read_bytes()
    assert stored[:4] == b"\x1f\x8b\x08\x00" and stored[4:8] == b"\x00\x00\x00\x00"  # gzip, deflate, mtime 0
    document = json.loads(gzip.decompress(stored))  # the standard library's gzip reads it
    assert document == arch.read(uri)
    path.write_bytes(gzip.compress(json.dumps(document).encode(), compresslevel=6))  # as zlib wrote it
    assert arch.read(uri) == document and response_body_bytes(arch.read(uri)) == BODY


def test_non_utf8_body_is_kept_as_base64(arch: RawArchive) -> None:
    body = b"\xff\xfe\x00binary\x81"
    uri = arch.put("anthropic", "cost_report", DAY, RUN_ID, 0, {"method": "GET"}, body, status=502)
    doc = arch.read(uri)
    assert doc["response"]["body_encoding"] == "base64"
    assert response_body_bytes(doc) == body
    assert doc["response"]["status"] == 502


def test_secrets_are_redacted_everywhere(arch: RawArchive) -> None:
    admin_key = "sk-ant-admin01-" + "A1b2" * 12
    cursor_key = "key_" + "0123456789abcdef" * 4
    request = {
        "method": "GET",
        "url": "https://user:Pw-SECRET3@api.example.com/v1/organizations/cost_report?starting_at=2026-01-02"
               "&key=SECRET2&limit=31&group_by[]=workspace_id",
        "headers": {"Authorization": "Basic SECRET7abcdefgh", "X-Api-Key": admin_key,
                    "anthropic-version": "2023-06-01", "Cookie": "session=SECRET8", "User-Agent": "ai-usage/0.1"},
        "params": {"api_key": "SECRET1", "starting_at": "2026-01-02", "api_key_ids[]": ["apikey_01Rj2N8SVvo6"],
                   "page": "page_abc"},
        "json": {"page": 1, "auth": {"token": "SECRET4"}, "filters": [{"client_secret": "SECRET5", "team": "core"}],
                 "note": f"sent with {cursor_key}", "max_tokens": 1024},
        "auth": ("SECRET9user", ""),
    }
    response_headers = {"Set-Cookie": "sid=SECRET6", "request-id": "req_42",
                        "anthropic-ratelimit-tokens-remaining": "9000"}
    uri = arch.put("anthropic", "cost_report", DAY, RUN_ID, 0, request, BODY, status=200,
                   response_headers=response_headers)

    text = raw_text(uri)
    for secret in ("SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5", "SECRET6", "SECRET7", "SECRET8",
                   "SECRET9", admin_key, cursor_key):
        assert secret not in text, secret
    doc = arch.read(uri)
    req = doc["request"]
    assert req["url"] == ("https://***@api.example.com/v1/organizations/cost_report?starting_at=2026-01-02"
                          "&key=***&limit=31&group_by[]=workspace_id")
    assert req["headers"] == {"Authorization": "***", "X-Api-Key": "***", "anthropic-version": "2023-06-01",
                              "Cookie": "***", "User-Agent": "ai-usage/0.1"}
    # Identifiers of keys are not keys: the filter stays, so the request can be replayed.
    assert req["params"] == {"api_key": "***", "starting_at": "2026-01-02", "api_key_ids[]": ["apikey_01Rj2N8SVvo6"],
                             "page": "page_abc"}
    assert req["json"] == {"page": 1, "auth": "***", "filters": [{"client_secret": "***", "team": "core"}],
                           "note": "sent with ***", "max_tokens": 1024}
    assert req["auth"] == "***"
    assert doc["response"]["headers"] == {"request-id": "req_42", "anthropic-ratelimit-tokens-remaining": "9000"}
    assert response_body_bytes(doc) == BODY


def test_params_as_pairs_keep_repeated_names(arch: RawArchive) -> None:
    params = [("group_by[]", "workspace_id"), ("group_by[]", "description"), ("x-api-key", "SECRET")]
    doc = arch.read(arch.put("anthropic", "cost_report", DAY, RUN_ID, 0, {"params": params}, "{}", status=200))
    assert doc["request"]["params"] == [["group_by[]", "workspace_id"], ["group_by[]", "description"],
                                        ["x-api-key", "***"]]


def test_rewrite_is_idempotent_and_atomic(arch: RawArchive, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = datetime(2026, 1, 3, 1, 0, tzinfo=UTC)
    args = ("cursor", "daily_usage", DAY, RUN_ID, 0, {"method": "POST"}, BODY)
    first = arch.put(*args, status=200, archived_at=stamp)
    first_bytes = Path(first.removeprefix("file://")).read_bytes()
    second = arch.put(*args, status=200, archived_at=stamp)
    folder = Path(first.removeprefix("file://")).parent
    assert second == first
    assert Path(second.removeprefix("file://")).read_bytes() == first_bytes  # same call, same bytes
    assert [p.name for p in folder.iterdir()] == [Path(first).name]

    # A later re-run replaces the object; a crash while writing leaves the previous object whole.
    arch.put("cursor", "daily_usage", DAY, RUN_ID, 0, {"method": "POST"}, b'{"v": 2}', status=200)
    assert arch.read(first)["response"]["body"] == '{"v": 2}'

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        arch.put("cursor", "daily_usage", DAY, RUN_ID, 0, {"method": "POST"}, b'{"v": 3}', status=200)
    assert arch.read(first)["response"]["body"] == '{"v": 2}'
    assert [p.name for p in folder.iterdir()] == [Path(first).name]  # no temp file left behind


def test_run_ids_become_safe_names() -> None:
    manual = "manual__2026-01-02T10:11:12.123456+00:00"
    assert safe_run_id(manual) == "manual__2026-01-02T10_11_12.123456_00_00"
    assert safe_run_id("../../etc/passwd") == "_.._etc_passwd"
    assert object_key("claude_code", "usage", DAY, "a b/c", 3) == "claude_code/usage/2026-01-02/a_b_c-3.json.gz"
    long_a, long_b = "backfill__" + "x" * 300 + "a", "backfill__" + "x" * 300 + "b"
    assert len(safe_run_id(long_a)) <= 150
    assert safe_run_id(long_a) != safe_run_id(long_b)
    for bad in (-1, True, 1.0):
        with pytest.raises(ValueError):
            object_key("cursor", "spend", DAY, RUN_ID, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        object_key("...", "spend", DAY, RUN_ID, 0)


def test_path_date_does_not_depend_on_the_machine_time_zone(arch: RawArchive, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: local "today" is already tomorrow in UTC terms
    time.tzset()
    try:
        late_utc = datetime(2026, 1, 2, 23, 30, tzinfo=UTC)
        new_york_evening = datetime(2026, 1, 2, 20, 0, tzinfo=timezone(timedelta(hours=-5)))  # 01:00Z on the 3rd
        uris = [arch.put("cursor", "spend", day, RUN_ID, 0, {}, "{}", status=200)
                for day in (late_utc, new_york_evening, datetime(2026, 1, 2, 23, 59), "2026-01-02")]
        assert ["/2026-01-02/", "/2026-01-03/", "/2026-01-02/", "/2026-01-02/"] == [
            "/" + u.split("/")[-2] + "/" for u in uris]
        naive_stamp = arch.read(arch.put("cursor", "spend", DAY, RUN_ID, 1, {}, "{}", status=200,
                                         archived_at=datetime(2026, 1, 3, 5, 0)))["archived_at"]
        assert naive_stamp == "2026-01-03T05:00:00Z"  # naive means UTC, not local time
        now = datetime.fromisoformat(arch.read(uris[0])["archived_at"])
        assert abs((now - datetime.now(UTC)).total_seconds()) < 60
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_list_orders_pages_numerically_and_ignores_other_days(arch: RawArchive) -> None:
    for n in (0, 1, 2, 10, 11):
        arch.put("cursor", "daily_usage", DAY, RUN_ID, n, {}, "{}", status=200)
    arch.put("cursor", "daily_usage", DAY, "manual__2026-01-05T09:00:00+00:00", 0, {}, "{}", status=200)
    arch.put("cursor", "daily_usage", date(2026, 1, 3), RUN_ID, 0, {}, "{}", status=200)
    names = [u.rsplit("/", 1)[1] for u in arch.list("cursor", "daily_usage", DAY)]
    stem = "scheduled__2026-01-02T00_00_00_00_00"
    assert names == ["manual__2026-01-05T09_00_00_00_00-0.json.gz"] + [f"{stem}-{n}.json.gz" for n in (0, 1, 2, 10, 11)]
    assert arch.list("cursor", "daily_usage", date(2026, 1, 4)) == []
    assert all(arch.read(u)["day"] == "2026-01-02" for u in arch.list("cursor", "daily_usage", DAY))


def test_put_response_archives_a_real_exchange(arch: RawArchive) -> None:
    with HttpReceiver(body=BODY, headers={"Content-Type": "application/json", "Set-Cookie": "a=SECRETC"}) as api:
        response = requests.post(f"{api.url}/teams/daily-usage-data?limit=5", json={"startDate": 1767312000000},
                                 auth=("key_SECRETK", ""), headers={"x-api-key": "SECRETH"}, timeout=5)
    uri = arch.put_response("cursor", "daily_usage", DAY, RUN_ID, 0, response)
    doc = arch.read(uri)
    assert response_body_bytes(doc) == BODY == response.content
    assert doc["request"]["method"] == "POST"
    assert doc["request"]["url"] == f"{api.url}/teams/daily-usage-data?limit=5"
    assert doc["request"]["json"] == {"startDate": 1767312000000}
    assert doc["request"]["headers"]["Authorization"] == "***"
    assert doc["request"]["headers"]["x-api-key"] == "***"
    assert doc["response"]["status"] == 200
    assert "Set-Cookie" not in doc["response"]["headers"]
    assert not {"SECRETC", "SECRETK", "SECRETH"} & set(raw_text(uri).replace('"', " ").split())
    assert all(s not in raw_text(uri) for s in ("SECRETC", "SECRETK", "SECRETH"))


def test_gcs_round_trip_through_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    with GcsStub() as gcs:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
                           json.dumps({"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True}}))
        monkeypatch.setenv("AI_USAGE_ARCHIVE", "gs://ai-usage-archive/raw/v1")
        arch = RawArchive()
        request = {"method": "GET", "url": "https://api.anthropic.com/v1/organizations/usage_report/claude_code",
                   "headers": {"x-api-key": "sk-ant-admin01-SECRETSECRETSECRET"}, "params": {"starting_at": "2026-01-02"}}
        uri = arch.put("anthropic", "claude_code_usage", DAY, RUN_ID, 0, request, BODY, status=200)
        uploads = sum(1 for method, _ in gcs.requests if method == "POST")
        arch.put("anthropic", "claude_code_usage", DAY, RUN_ID, 1, request, b"[]", status=200)
        arch.put("anthropic", "claude_code_usage", date(2026, 1, 3), RUN_ID, 0, request, b"[]", status=200)
        listed = arch.list("anthropic", "claude_code_usage", DAY)
        doc = arch.read(uri)

    name = "raw/v1/anthropic/claude_code_usage/2026-01-02/scheduled__2026-01-02T00_00_00_00_00-0.json.gz"
    assert uri == f"gs://ai-usage-archive/{name}"
    assert uploads == 1  # one upload per put (GCSHook.upload would repeat a successful upload)
    assert listed == [uri, uri.replace("-0.json.gz", "-1.json.gz")]
    stored, content_type = gcs.objects[("ai-usage-archive", name)]
    assert content_type == "application/gzip"
    assert b"SECRETSECRET" not in gzip.decompress(stored)
    assert response_body_bytes(doc) == BODY
    assert doc["request"]["headers"] == {"x-api-key": "***"}
    assert doc["request"]["params"] == {"starting_at": "2026-01-02"}


def test_file_location_can_be_passed_explicitly(tmp_path: Path) -> None:
    arch = RawArchive(FileLocation(path=tmp_path))
    uri = arch.put("sheets", "people", "2026-01-02", RUN_ID, 0, {}, "a,b\n1,2\n", status=200)
    assert uri == arch.uri_for("sheets", "people", DAY, RUN_ID, 0)
    assert arch.read(uri)["response"]["body"] == "a,b\n1,2\n"
    assert archive_mod.utc_day("2026-01-02T23:00:00-05:00") == date(2026, 1, 3)
