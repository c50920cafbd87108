"""Text shown to anonymous callers: internal locations (URLs, host names, addresses, ports) taken out.

Poll and load errors quote the MLflow client's exceptions, which name the tracking server
(`HTTPConnectionPool(host='mlflow', port=5000): ... url: /api/2.0/...`). Public endpoints show the gist; the
admin endpoint and the logs keep the detail.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"

_PATTERNS = (
    # scheme://anything up to whitespace or a closing quote/bracket
    re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s'\"<>)\]]+", re.IGNORECASE),
    # urllib3 / requests: host='mlflow', port=5000, url: /api/2.0/...
    re.compile(r"\bhost=(?:'[^']*'|\"[^\"]*\"|[^\s,)]+)", re.IGNORECASE),
    re.compile(r"\bport=\d+", re.IGNORECASE),
    re.compile(r"\burl: ?\S+", re.IGNORECASE),
    # name:port and bare IPv4 addresses
    re.compile(r"\b[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9\-]+)*:\d{2,5}\b", re.IGNORECASE),
    re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"),
)


def redact_locations(text: str | None) -> str | None:
    if text is None:
        return None
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text
