"""The card vault: card numbers encrypted at rest with AES-256-GCM.

Each ciphertext is stored with the id of the key that sealed it, so keys can be
rotated: new cards are sealed with the active key, old ones still open with the
retired keys listed alongside it. The payment method id is the associated data,
so a ciphertext copied onto another row does not decrypt.

The fingerprint is an HMAC-SHA256 of the number under a key derived from the
vault key (HKDF): the same card gives the same fingerprint across customers (for
fraud rules), and it cannot be reversed or brute-forced without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class VaultError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


def key_id_for(key: bytes) -> str:
    """A public, stable name for a key: a hash prefix, never the key."""
    return "vk_" + hashlib.sha256(b"fooddispatch-vault-key-id" + key).hexdigest()[:12]


def decode_key(b64: str) -> bytes:
    try:
        key = base64.b64decode(b64, validate=True)
    except ValueError:
        raise VaultError("vault key is not valid base64") from None
    if len(key) != 32:
        raise VaultError("vault key must be 32 bytes (AES-256), base64-encoded")
    return key


class Vault:
    def __init__(self, active_key_b64: str, retired_keys_b64: tuple[str, ...] = ()) -> None:
        active = decode_key(active_key_b64)
        self.active_key_id = key_id_for(active)
        self._keys = {key_id_for(k): AESGCM(k) for k in (active, *map(decode_key, retired_keys_b64))}
        self._fingerprint_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"fooddispatch card fingerprint v1"
        ).derive(active)

    def seal(self, number: str, payment_method_id: str) -> Sealed:
        nonce = os.urandom(12)
        ciphertext = self._keys[self.active_key_id].encrypt(nonce, number.encode(), payment_method_id.encode())
        return Sealed(self.active_key_id, nonce, ciphertext)

    def open(self, sealed: Sealed, payment_method_id: str) -> str:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise VaultError(f"no key {sealed.key_id} in the vault's key ring")
        return aead.decrypt(sealed.nonce, sealed.ciphertext, payment_method_id.encode()).decode()

    def fingerprint(self, number: str) -> str:
        return hmac.new(self._fingerprint_key, number.encode(), hashlib.sha256).hexdigest()[:24]
