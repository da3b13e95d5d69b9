"""Simulator of the Google Sheets API v4 values endpoints (and of the OAuth token endpoint a service account uses).

https://developers.google.com/sheets/api/reference/rest/v4/spreadsheets.values. Served:

- ``POST /token``: the service-account JWT bearer grant (RFC 7523) Google's token endpoint answers; the
  assertion's RS256 signature is verified with the public half of the key `service_account_info()` hands
  out, and the token remembers its scopes. Point a service-account key's ``token_uri`` here.
- ``GET /v4/spreadsheets/{id}``: metadata (``properties.title/locale/timeZone``, ``sheets[].properties``).
- ``GET /v4/spreadsheets/{id}/values/{range}``: ``{range, majorDimension, values}`` as the API returns it:
  cells as their displayed text (the simulator stores what a person sees, so FORMATTED_VALUE is the
  stored text), trailing empty cells of a row and trailing empty rows left out, a blank row inside as
  ``[]``, no ``values`` key at all for an empty range. ``majorDimension=COLUMNS`` transposes.
- ``POST /v4/spreadsheets/{id}/values/{range}:append``: ``valueInputOption`` required (RAW |
  USER_ENTERED), rows inserted after the last non-empty row of the tab; answers with ``updates``.

Every request needs ``Authorization: Bearer <token>`` from ``/token`` whose scopes include spreadsheets
(401 UNAUTHENTICATED / 403 PERMISSION_DENIED otherwise) unless the app is built with
``allow_anonymous=True``. Errors have Google's shape ``{"error": {"code", "message", "status"}}``; an
unknown tab is 400 "Unable to parse range". Faults (429, 5xx, delays) come from the SimServer as for the
other simulators.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sandbox.app import App, HTTPAbort, Request, Response, json_response
from sandbox.clock import SimClock
from sandbox.registry import register_app
from sandbox.rng import stable_token

if TYPE_CHECKING:
    from sandbox.org import Organisation

SCOPES_OK = ("https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive")
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_CELLS = re.compile(r"^([A-Z]*)(\d*)(?::([A-Z]*)(\d*))?$")


def google_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


def col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def col_letters(index: int) -> str:
    out, index = "", index + 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def quote_title(title: str) -> str:
    return title if re.fullmatch(r"[A-Za-z0-9_]+", title) else "'" + title.replace("'", "''") + "'"


def split_range(text: str) -> tuple[str, str]:
    """``'my tab'!A1:C`` → (``my tab``, ``A1:C``); ``people`` → (``people``, ``""``)."""
    if text.startswith("'"):
        i, title = 1, []
        while i < len(text):
            if text[i] == "'":
                if text[i + 1:i + 2] == "'":
                    title.append("'")
                    i += 2
                    continue
                break
            title.append(text[i])
            i += 1
        rest = text[i + 1:]
        return "".join(title), rest[1:] if rest.startswith("!") else rest
    title, _, cells = text.partition("!")
    return title, cells


@dataclass
class Spreadsheet:
    spreadsheet_id: str
    title: str
    tabs: dict[str, list[list[str]]] = field(default_factory=dict)   # title -> grid (header = row 1)
    locale: str = "en_US"
    time_zone: str = "Etc/GMT"


class SheetsApp(App):
    """The app: spreadsheets held in memory, issued tokens, the service-account key pair."""

    def __init__(self, clock: SimClock, *, allow_anonymous: bool = False) -> None:
        super().__init__("sheets", clock=clock, error_body=google_error)
        self.allow_anonymous = allow_anonymous
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.tokens: dict[str, tuple[str, ...]] = {}
        self.lock = threading.Lock()
        self._key: Any = None
        self.client_email = "ai-usage-sheets@sandbox-project.iam.gserviceaccount.com"

    # ------------------------------------------------------------------ set-up and inspection

    def add_spreadsheet(self, spreadsheet_id: str, title: str,
                        tabs: dict[str, list[list[str]]]) -> Spreadsheet:
        sheet = Spreadsheet(spreadsheet_id, title, {t: [list(r) for r in g] for t, g in tabs.items()})
        self.spreadsheets[spreadsheet_id] = sheet
        return sheet

    def grid(self, spreadsheet_id: str, title: str) -> list[list[str]]:
        with self.lock:
            return [list(r) for r in self.spreadsheets[spreadsheet_id].tabs[title]]

    def set_tab(self, spreadsheet_id: str, title: str, grid: list[list[str]]) -> None:
        with self.lock:
            self.spreadsheets[spreadsheet_id].tabs[title] = [list(r) for r in grid]

    def _private_key(self) -> Any:
        if self._key is None:
            from cryptography.hazmat.primitives.asymmetric import rsa

            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._key

    def service_account_info(self, base_url: str) -> dict[str, str]:
        """A service-account key file (the JSON Google issues) whose ``token_uri`` is this simulator."""
        from cryptography.hazmat.primitives import serialization

        pem = self._private_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": "sandbox-project", "private_key_id": "sandbox-key-1",
                "private_key": pem, "client_email": self.client_email, "client_id": "100000000000000000001",
                "token_uri": f"{base_url.rstrip('/')}/token"}

    # ------------------------------------------------------------------ auth

    def issue_token(self, request: Request) -> Response:
        from cryptography.hazmat.primitives import serialization
        from google.auth import jwt

        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not form.get("assertion"):
            return json_response({"error": "unsupported_grant_type",
                                  "error_description": "expected a JWT bearer assertion"}, 400)
        public = self._private_key().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        try:
            claims = jwt.decode(form["assertion"], certs=public, clock_skew_in_seconds=60)
        except Exception as exc:  # a bad signature or expired assertion is the client's error
            return json_response({"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}, 400)
        if claims.get("iss") != self.client_email:
            return json_response({"error": "invalid_grant", "error_description": "Invalid issuer"}, 400)
        token = "ya29.sandbox-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = tuple(str(claims.get("scope", "")).split())
        return json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def authorize(self, request: Request) -> None:
        header = request.header("authorization") or ""
        if not header.startswith("Bearer "):
            if self.allow_anonymous:
                return
            raise HTTPAbort(401, "Request is missing required authentication credential.")
        scopes = self.tokens.get(header[len("Bearer "):].strip())
        if scopes is None:
            raise HTTPAbort(401, "Request had invalid authentication credentials.")
        if not any(s in SCOPES_OK for s in scopes):
            raise HTTPAbort(403, "Request had insufficient authentication scopes.")

    # ------------------------------------------------------------------ endpoints

    def spreadsheet(self, request: Request) -> Spreadsheet:
        self.authorize(request)
        sheet = self.spreadsheets.get(request.path_params["spreadsheet_id"])
        if sheet is None:
            raise HTTPAbort(404, "Requested entity was not found.")
        return sheet

    def metadata(self, request: Request) -> dict[str, Any]:
        sheet = self.spreadsheet(request)
        with self.lock:
            return {
                "spreadsheetId": sheet.spreadsheet_id,
                "properties": {"title": sheet.title, "locale": sheet.locale, "autoRecalc": "ON_CHANGE",
                               "timeZone": sheet.time_zone},
                "sheets": [
                    {"properties": {"sheetId": 1000 + i, "title": title, "index": i, "sheetType": "GRID",
                                    "gridProperties": {"rowCount": max(1000, len(grid)),
                                                       "columnCount": max(26, *map(len, grid), 0)}}}
                    for i, (title, grid) in enumerate(sheet.tabs.items())
                ],
                "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{sheet.spreadsheet_id}/edit",
            }

    def _tab(self, sheet: Spreadsheet, range_text: str) -> tuple[str, list[list[str]], str]:
        title, cells = split_range(range_text)
        if title not in sheet.tabs:
            raise HTTPAbort(400, f"Unable to parse range: {range_text}")
        if not _CELLS.match(cells):
            raise HTTPAbort(400, f"Unable to parse range: {range_text}")
        return title, sheet.tabs[title], cells

    def get_values(self, request: Request) -> dict[str, Any]:
        sheet = self.spreadsheet(request)
        render = request.arg("valueRenderOption", "FORMATTED_VALUE")
        if render not in ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"):
            raise HTTPAbort(400, f"Invalid value at 'value_render_option' ({render})")
        dimension = request.arg("majorDimension", "ROWS")
        if dimension not in ("ROWS", "COLUMNS"):
            raise HTTPAbort(400, f"Invalid value at 'major_dimension' ({dimension})")
        with self.lock:
            title, grid, cells = self._tab(sheet, request.path_params["range"])
            m = _CELLS.match(cells)
            assert m is not None
            c1 = col_index(m[1]) if m[1] else 0
            r1 = int(m[2]) - 1 if m[2] else 0
            single = m[3] is None and m[4] is None and bool(cells)
            c2 = col_index(m[3]) if m[3] else (c1 if single and m[1] else None)
            r2 = int(m[4]) - 1 if m[4] else (r1 if single and m[2] else None)
            rows = [list(r[c1:None if c2 is None else c2 + 1])
                    for r in grid[r1:None if r2 is None else r2 + 1]]
        for row in rows:
            while row and row[-1] == "":
                row.pop()
        while rows and not rows[-1]:
            rows.pop()
        width = max((len(r) for r in rows), default=0)
        shown = f"{quote_title(title)}!{col_letters(c1)}{r1 + 1}:{col_letters(max(c1, c1 + width - 1))}{r1 + max(1, len(rows))}"
        out: dict[str, Any] = {"range": shown, "majorDimension": dimension}
        if rows:
            if dimension == "COLUMNS":
                rows = [[r[i] if i < len(r) else "" for r in rows] for i in range(width)]
            out["values"] = rows
        return out

    def post_values(self, request: Request) -> dict[str, Any]:
        range_text = request.path_params["range"]
        if not range_text.endswith(":append"):
            raise HTTPAbort(404, f"No route for POST {request.path}")
        sheet = self.spreadsheet(request)
        option = request.arg("valueInputOption")
        if option not in ("RAW", "USER_ENTERED"):
            raise HTTPAbort(400, "'valueInputOption' is required but not specified" if option is None
                            else f"Invalid value at 'value_input_option' ({option})")
        body = request.json or {}
        values = body.get("values")
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            raise HTTPAbort(400, "Invalid JSON payload: 'values' must be a list of rows")
        with self.lock:
            title, grid, _ = self._tab(sheet, range_text[: -len(":append")])
            while grid and not any(c != "" for c in grid[-1]):
                grid.pop()                       # the table ends at its last non-empty row
            first = len(grid) + 1
            added = [["" if v is None else (str(v).upper() if isinstance(v, bool) else str(v)) for v in row]
                     for row in values]
            grid.extend(added)
            width = max((len(r) for r in added), default=0)
            table = f"{quote_title(title)}!A1:{col_letters(max(0, max(map(len, grid), default=1) - 1))}{first - 1}"
        updated = f"{quote_title(title)}!A{first}:{col_letters(max(0, width - 1))}{first + len(added) - 1}"
        return {"spreadsheetId": sheet.spreadsheet_id, "tableRange": table,
                "updates": {"spreadsheetId": sheet.spreadsheet_id, "updatedRange": updated,
                            "updatedRows": len(added), "updatedColumns": width,
                            "updatedCells": sum(len(r) for r in added)}}


def org_spreadsheet_id(org: Organisation) -> str:
    """A Google-looking spreadsheet id (44 characters), stable per organisation seed."""
    return "1" + stable_token(org.seed, "spreadsheet", length=43)


def org_tabs(org: Organisation) -> dict[str, list[list[str]]]:
    """The organisation's Sheet as grids: header row, then the rows of `org.sheet_tabs()`."""
    from sandbox.sheet import TAB_COLUMNS

    return {name: [list(TAB_COLUMNS[name]), *([row[c] for c in TAB_COLUMNS[name]] for row in rows)]
            for name, rows in org.sheet_tabs().items()}


@register_app("sheets")
def build_sheets(org: Organisation, clock: SimClock, **options: Any) -> SheetsApp:
    """The Sheets simulator holding the organisation's spreadsheet (`org_spreadsheet_id(org)`)."""
    app = SheetsApp(clock, **options)
    app.add_spreadsheet(org_spreadsheet_id(org), f"{org.organization_name} — AI usage reference data",
                        org_tabs(org))
    app.add_route("POST", "/token", app.issue_token)
    app.add_route("GET", "/v4/spreadsheets/{spreadsheet_id}", app.metadata)
    app.add_route("GET", "/v4/spreadsheets/{spreadsheet_id}/values/{range}", app.get_values)
    app.add_route("POST", "/v4/spreadsheets/{spreadsheet_id}/values/{range}", app.post_values)
    return app


def connection_env(app: SheetsApp, base_url: str) -> str:
    """``AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT`` for the product: a service-account key whose token endpoint and
    Sheets endpoint (the connection extra ``sheets_endpoint``) are this simulator."""
    extra = {"keyfile_dict": json.dumps(app.service_account_info(base_url)), "project": "sandbox-project",
             "sheets_endpoint": base_url}
    return json.dumps({"conn_type": "google_cloud_platform", "extra": extra})

