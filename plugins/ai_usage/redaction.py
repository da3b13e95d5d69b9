"""What a secret looks like, in one place: the raw archive and the alerts both scrub with these rules.

Two nets: by *name* (a header, query parameter or JSON key that names a credential) and by *shape*
(a vendor key or a bearer token inside any text, e.g. an exception message or a URL).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

REDACTED = "***"

# Substrings that make a name secret (matched on each word of the name, lowercased).
_SECRET_PARTS = ("key", "token", "secret", "password", "passwd", "authorization", "cookie", "credential",
                 "signature")
_SECRET_WORDS = frozenset({"auth", "pwd", "jwt", "bearer", "session", "sessionid"})
# A name whose last word is one of these identifies or counts a credential without being one
# (`api_key_id`, `api_key_ids[]`, `api_key_name`, `partial_key_hint`).
_IDENTIFIER_WORDS = frozenset({"id", "ids", "name", "names", "hint", "type", "count", "status"})
# Token *counts* (`max_tokens`, `anthropic-ratelimit-tokens-remaining`) are usage, not credentials.
_COUNT_WORDS = frozenset({"tokens"})

_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

# Credential shapes of the vendors this package talks to (vendor-apis.md), plus generic auth schemes.
_SHAPES = (
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{6,}"),                  # Anthropic admin / API keys
    re.compile(r"\bkey_[0-9a-fA-F]{32,}"),                     # Cursor keys (older form)
    re.compile(r"\bcrsr_[A-Za-z0-9_\-]{16,}"),                 # Cursor keys (newer form)
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),           # Slack tokens
    re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/_\-]+"),  # Slack webhook paths
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),                  # Google API keys
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"),
)
# `name=value` pairs whose name is secret, inside free text or a query string.
_PAIR = re.compile(r"(?P<name>[A-Za-z0-9_.\-\[\]]+)(?P<sep>=|:\s*)(?P<value>[^\s&;,'\"]+)")
# Credentials in a URL's user-info part: scheme://user:password@host
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@]+@")


def is_secret_name(name: str) -> bool:
    """True if a header / parameter / JSON key names a credential (`x-api-key`, `access_token`, `Cookie`)."""
    words = [w.lower() for w in _WORDS.findall(name or "")]
    if not words:
        return False
    if words[-1] in _IDENTIFIER_WORDS and len(words) > 1:
        return False
    for word in words:
        if word in _COUNT_WORDS:
            continue
        if word in _SECRET_WORDS or any(part in word for part in _SECRET_PARTS):
            return True
    return False


def redact_text(text: str) -> str:
    """Scrub credential shapes, URL user-info and secret `name=value` pairs out of free text."""
    if not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    for shape in _SHAPES:
        out = shape.sub(REDACTED, out)

    def _pair(m: re.Match[str]) -> str:
        if is_secret_name(unquote_plus(m.group("name"))) and m.group("value") != REDACTED:
            return f"{m.group('name')}{m.group('sep')}{REDACTED}"
        return m.group(0)

    return _PAIR.sub(_pair, out)


def redact_url(url: str) -> str:
    """A URL without user-info credentials or secret query values; everything else is kept as written."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        name, eq, _value = pair.partition("=")
        pairs.append(f"{name}={REDACTED}" if eq and is_secret_name(unquote_plus(name)) else pair)
    rebuilt = urlunsplit((parts.scheme, netloc, parts.path, "&".join(pairs), parts.fragment))
    for shape in _SHAPES:
        rebuilt = shape.sub(REDACTED, rebuilt)
    return rebuilt


def redact_mapping(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of headers / params with secret-named entries replaced and credential shapes scrubbed."""
    return {str(k): (REDACTED if is_secret_name(str(k)) else redact_value(v))
            for k, v in (values or {}).items()}


def redact_value(value: Any) -> Any:
    """Recursively redact a JSON-like value: secret-named keys at any depth, credential shapes in strings."""
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
