"""The push scheme written from the spec (docs: shared/spec/events.md), independent of the SDK.

Used to build pushes the SDK's receiver must accept or refuse: the tests check the SDK against
this, not against its own code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CID = "ks656399649443988986"
TOKEN = "VERIFY-canary-token-7c1d"
KEY = base64.b64encode(bytes(range(1, 33))).decode().rstrip("=")  # 43 characters: AES-256
TICKET = "TICKET-canary-4e8a1b"


def new_key() -> str:
    """A random 43-character key, as the platform shows one."""
    return base64.b64encode(os.urandom(32)).decode().rstrip("=")


def raw_key(key: str) -> bytes:
    return base64.b64decode(key + "=" * (-len(key) % 4))


def encrypt_bytes(plain: bytes, key: str = KEY, *, pad: bool = True) -> str:
    k = raw_key(key)
    if pad:
        padder = padding.PKCS7(128).padder()
        plain = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(k), modes.CBC(k[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def encrypt(document: Any, key: str = KEY) -> str:
    return encrypt_bytes(json.dumps(document, ensure_ascii=False).encode("utf-8"), key)


def sign(body: bytes, token: str = TOKEN) -> str:
    return hashlib.sha1(body + token.encode("utf-8")).hexdigest()


def ticket_message(
    ticket: str = TICKET, *, event_time: int = 1625740912167, cid: str = CID
) -> dict[str, Any]:
    return {
        "componentAppId": cid,
        "componentTicket": ticket,
        "event": "COMPONENT_TICKET",
        "eventTime": event_time,
        "expiresIn": 2400,
    }


def envelope(
    message: Any,
    *,
    msg_id: str = "a63cae97-3ded-4f76-be21-8d45112ee06f",
    cid: str = CID,
    key: str = KEY,
    timestamp: int = 1625740912167,
) -> bytes:
    encrypted = message if isinstance(message, str) else encrypt(message, key)
    return json.dumps(
        {"encryptedMsg": encrypted, "msgId": msg_id, "componentAppId": cid, "timestamp": timestamp}
    ).encode()


def signed(body: bytes, token: str = TOKEN) -> dict[str, str]:
    return {"kwaisign": sign(body, token), "Content-Type": "application/json"}
