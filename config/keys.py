"""Personal-data keys: from settings in production, a local trial key file otherwise."""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

from booking.personal import Vault
from config.settings import Settings

log = logging.getLogger(__name__)

TRIAL_WARNING = (
    "Using the trial key file %s for residents' personal data. It is for trial use only: "
    "set MADOGUCHI_DATA_KEYS and MADOGUCHI_LOOKUP_KEY from the ward's key store in production."
)


def load_vault(settings: Settings) -> Vault:
    """The vault for this installation; creates the trial key file on first start if needed."""
    if settings.data_keys and settings.lookup_key:
        keys = [k.strip() for k in settings.data_keys.split(",") if k.strip()]
        return Vault.from_keys(keys, settings.lookup_key)
    path = Path(settings.data_dir) / "trial-keys.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        material = {
            "data_keys": [Fernet.generate_key().decode()],
            "lookup_key": secrets.token_urlsafe(32),
        }
        # Created readable by this user only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(material, handle)
    log.warning(TRIAL_WARNING, path)
    material = json.loads(path.read_text())
    return Vault.from_keys(material["data_keys"], material["lookup_key"])


def new_key_material() -> dict[str, str]:
    """Fresh keys for `madoguchi keys new`, to put in the ward's key store."""
    return {
        "MADOGUCHI_DATA_KEYS": Fernet.generate_key().decode(),
        "MADOGUCHI_LOOKUP_KEY": secrets.token_urlsafe(32),
    }


TRIAL_TWILIO_WARNING = (
    "No MADOGUCHI_TWILIO_AUTH_TOKEN: the IVR checks webhook signatures with the trial token %s "
    "(kept in %s). `madoguchi call` signs with it; a real Twilio number needs the real token."
)


def load_twilio_token(settings: Settings, *, announce: bool = True) -> str:
    """The auth token webhooks are signed with. The IVR never runs unchecked: without a
    configured token, one is made up on first start and kept beside the trial keys."""
    if settings.twilio_auth_token is not None:
        return settings.twilio_auth_token.get_secret_value()
    path = Path(settings.data_dir) / "trial-twilio-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(16))
    token = path.read_text().strip()
    if announce:
        log.warning(TRIAL_TWILIO_WARNING, token, path)
    return token
