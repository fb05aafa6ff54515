"""The sandbox's generated credentials: made once per installation, kept in var/ (git-ignored)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def _random_credentials() -> dict:
    return {
        "salesforce": {
            "username": "integration@northstar.sandbox",
            "password": secrets.token_urlsafe(18),
            "security_token": secrets.token_hex(12),
            "client_id": "3MVG9" + secrets.token_urlsafe(30),
            "client_secret": secrets.token_hex(32),
        },
        "servicenow": {
            "username": "northstar.integration",
            "password": secrets.token_urlsafe(18),
        },
    }


def ensure_credentials(cfg=None) -> dict:
    """Return the sandbox credentials, creating the file (mode 0600) with random values if missing."""
    if cfg is None:
        from northstar.settings import settings

        cfg = settings()
    path = Path(cfg.sandbox_secrets_file)
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    creds = _random_credentials()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its file
        return json.loads(path.read_text())
    with os.fdopen(fd, "w") as handle:
        json.dump(creds, handle, indent=2)
    return creds
