"""Secrets at rest: SMTP passwords, OAuth tokens, DKIM keys and webhook secrets are stored encrypted (Fernet,
AES-128-CBC + HMAC-SHA256) with a key derived from POSTDESK_SECRET_KEY. API tokens are not encrypted but hashed."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

PREFIX = "enc1:"


def derive_key(purpose: str, length: int = 32) -> bytes:
    """A key for one purpose, derived from the installation's secret key (HKDF-SHA256)."""
    return _derive(settings.SECRET_KEY, purpose, length)


@functools.lru_cache(maxsize=32)
def _derive(secret: str, purpose: str, length: int) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=b"postdesk", info=purpose.encode())
    return hkdf.derive(secret.encode())


@functools.lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(secret, "stored-credentials", 32)))


def encrypt(plaintext: str) -> str:
    if plaintext == "":
        return ""
    return PREFIX + _fernet(settings.SECRET_KEY).encrypt(plaintext.encode()).decode()


class DecryptionError(Exception):
    pass


def decrypt(stored: str) -> str:
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        raise DecryptionError("stored secret is not in the encrypted format")
    try:
        return _fernet(settings.SECRET_KEY).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise DecryptionError("stored secret cannot be decrypted: was POSTDESK_SECRET_KEY changed?")


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted at rest; Python code sees plaintext."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        try:
            return decrypt(value)
        except DecryptionError:
            return ""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = "pd_") -> str:
    return prefix + secrets.token_urlsafe(32)


def hmac_hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()
