"""Secrets CRBM must be able to read back (a mail server's password), sealed at rest.

A password we only check is hashed (argon2, ``core.kernel.users``); one we must send to another
server cannot be. Such values are stored *sealed*: encrypted and authenticated with
Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under a key derived with HKDF
from the site's ``secret_key`` (site.yaml, which never goes into the database). So a copy
of the database alone — a backup, a dump — does not give the password away.

A sealed value is the text ``sealed:v1:<Fernet token>``. ``unseal`` takes a plain value
as it is (settings stored before they were sealed, or by hand), and raises
``SealError`` when the key does not fit (the site's secret key changed): the value must
then be entered again.
"""
from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.kernel.errors import CrbmError

PREFIX = "sealed:v1:"
# the site settings holding a sealed secret (``crbm settings set`` seals them too)
SEALED_SETTINGS = frozenset({"smtp.password"})


class SealError(CrbmError):
    """A sealed value cannot be opened with this site's key."""


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"crbm: sealed site settings").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _site_key(site) -> str:
    return str(site.config["secret_key"])


def is_sealed(value) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(site, text: str) -> str:
    """``text`` sealed with the site's key ("" stays "": nothing to hide)."""
    if not text:
        return ""
    return PREFIX + _fernet(_site_key(site)).encrypt(text.encode()).decode()


def unseal(site, value) -> str:
    """The text of a sealed value; a plain value as it is."""
    if not is_sealed(value):
        return "" if value is None else str(value)
    try:
        return _fernet(_site_key(site)).decrypt(value[len(PREFIX):].encode()).decode()
    except (InvalidToken, ValueError):
        raise SealError("a stored secret cannot be read with this site's secret key "
                        "(was site.yaml's secret_key changed?); enter it again") from None
