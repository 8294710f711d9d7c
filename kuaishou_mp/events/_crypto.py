"""The push scheme's two pure steps: the ``kwaisign`` signature and the ``encryptedMsg`` cipher.

Each step is one small function so that, should the platform's scheme differ from the one
documented in the spec, only that function changes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from ..errors import InvalidPushError

__all__ = ["decrypt_message", "key_bytes", "verify_signature"]

_BLOCK = 16


def verify_signature(body: bytes, signature: str, token: str) -> bool:
    """Whether ``signature`` (the ``kwaisign`` header) signs ``body`` with ``token``.

    The signature is the lowercase hex SHA-1 of the raw request body followed by the
    verification token's UTF-8 bytes. The comparison takes constant time; upper-case hex is
    accepted too.

    Args:
        body: The exact bytes received (not re-serialized JSON).
        signature: The ``kwaisign`` header's value.
        token: Your message verification token (消息验证 TOKEN).

    Returns:
        ``False`` for a wrong, empty or non-ASCII signature; never raises for those.
    """
    if not isinstance(signature, str) or not signature or not signature.isascii():
        return False
    expected = hashlib.sha1(bytes(body) + token.encode("utf-8")).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def _b64decode(text: str, what: str) -> bytes:
    if not isinstance(text, str) or not text.isascii():
        raise InvalidPushError(f"{what} is not base64 text")
    text = text.strip()
    # The platform's keys come without their "=" padding (43 characters for 32 bytes).
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPushError(f"{what} is not valid base64") from None


def key_bytes(encryption_key: str) -> bytes:
    """The AES key an encryption key stands for.

    Raises:
        InvalidPushError: Not base64, or not 16, 24 or 32 bytes (the key is never shown).
    """
    key = _b64decode(encryption_key, "the encryption key")
    if len(key) not in (16, 24, 32):
        raise InvalidPushError(
            f"the encryption key decodes to {len(key)} bytes; AES needs 16, 24 or 32"
        )
    return key


def decrypt_message(encrypted_msg: str, encryption_key: str) -> dict[str, Any]:
    """Decrypt a push's ``encryptedMsg`` into the JSON object it holds.

    The key is the base64 encryption key (消息加密解密 KEY; its ``=`` padding may be left
    out: 43 characters decode to 32 bytes, AES-256). The cipher is AES-CBC with the key's
    first 16 bytes as the IV, and PKCS#7 padding; the plaintext is UTF-8 JSON.

    Args:
        encrypted_msg: The envelope's ``encryptedMsg`` (base64).
        encryption_key: Your encryption key, as the platform shows it.

    Returns:
        The decrypted JSON object.

    Raises:
        InvalidPushError: Bad base64, a key that is not 16, 24 or 32 bytes, a ciphertext
            that is not whole blocks, bad padding, not UTF-8, not JSON, or not a JSON object.
            The message says which, never the content or the key.
        ModuleNotFoundError: The ``events`` extra (``cryptography``) is not installed.
    """
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = key_bytes(encryption_key)
    ciphertext = _b64decode(encrypted_msg, "encryptedMsg")
    if not ciphertext or len(ciphertext) % _BLOCK:
        raise InvalidPushError(
            f"encryptedMsg is {len(ciphertext)} bytes, not a whole number of AES blocks"
        )
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:_BLOCK])).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    pad = padded[-1]
    # Checked by hand rather than with cryptography's unpadder: same result, and the error
    # then says exactly "bad padding".
    if not 1 <= pad <= _BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise InvalidPushError("encryptedMsg has bad PKCS#7 padding (wrong key?)")
    try:
        text = padded[:-pad].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPushError("the decrypted message is not UTF-8 (wrong key?)") from None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidPushError("the decrypted message is not JSON") from None
    if type(document) is not dict:
        raise InvalidPushError("the decrypted message is not a JSON object")
    return document
