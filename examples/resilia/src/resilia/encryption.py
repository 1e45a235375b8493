"""Files encrypted at rest: envelope encryption with AES-256-GCM (``cryptography``).

Each file gets its own random *data key*, which encrypts the content; the data key is
itself encrypted (*wrapped*) by a *master key* that never leaves the key ring. The
file holds a header line (format, master key id, wrapped data key, nonce) and the
ciphertext; the header is authenticated with the content, so changing either is
detected. Rotating the master key only rewraps the data key: the content, however
large, is not re-encrypted.

Master keys come from outside the code and outside git: the ``RESILIA_DATA_KEYS``
variable (``id:base64key,id:base64key``, the first one encrypts) or a key file with
the same content, for example a Kubernetes secret mounted in the pod.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"RESILIA-ENC-1\n"
KEYS_VAR = "RESILIA_DATA_KEYS"


class EncryptionError(ValueError):
    """A key ring, a key or an encrypted file that cannot be used; says why."""


def new_key() -> str:
    """A fresh 256-bit master key, base64-encoded (store it in a secret manager)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


@dataclass(frozen=True)
class KeyRing:
    """Master keys by id; ``current`` encrypts, every key can decrypt."""

    keys: Mapping[str, bytes]
    current: str

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """``id:base64,id:base64``: the first key is the current one."""
        if not isinstance(text, str):
            raise EncryptionError(f"{KEYS_VAR} must be text, got {type(text).__name__}")
        keys: dict[str, bytes] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key_id, sep, encoded = item.partition(":")
            if not sep or not key_id:
                raise EncryptionError(
                    f"{KEYS_VAR}: each key is written id:base64 (got {len(item)} chars)"
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise EncryptionError(f"key {key_id!r} is not valid base64") from None
            if len(key) != 32:
                raise EncryptionError(
                    f"key {key_id!r} has {len(key)} bytes, AES-256 needs 32"
                )
            # exercise: securite-duplicate-key
            if key_id in keys:
                raise EncryptionError(f"key id {key_id!r} appears twice in the ring")
            # end of exercise
            keys[key_id] = key
        if not keys:
            raise EncryptionError(f"{KEYS_VAR} holds no key")
        return cls(keys, next(iter(keys)))

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, key_file: Path | None = None
    ) -> KeyRing:
        """Keys from ``key_file`` if given, else from ``$RESILIA_DATA_KEYS``."""
        if key_file is not None:
            try:
                return cls.parse(Path(key_file).read_text())
            except OSError as exc:
                raise EncryptionError(f"cannot read the key file: {exc}") from None
        environ = os.environ if environ is None else environ
        if not environ.get(KEYS_VAR):
            raise EncryptionError(
                f"no master key: set {KEYS_VAR} (id:base64) or give a key file"
            )
        return cls.parse(environ[KEYS_VAR])

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise EncryptionError(
                f"the file was encrypted with master key {key_id!r}, "
                f"which is not in the key ring ({', '.join(self.keys)})"
            ) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _wrap(data_key: bytes, ring: KeyRing) -> dict[str, str]:
    # The key id is authenticated with the wrapped key: neither can be swapped.
    wrap_nonce = secrets.token_bytes(12)
    kek = AESGCM(ring.key(ring.current))
    return {
        "kid": ring.current,
        "wrap_nonce": _b64(wrap_nonce),
        "wrapped_key": _b64(kek.encrypt(wrap_nonce, data_key, ring.current.encode())),
    }


def _pack(header: dict, ciphertext: bytes) -> bytes:
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + ciphertext


def encrypt_bytes(data: bytes, ring: KeyRing) -> bytes:
    """Encrypt ``data`` with a fresh data key wrapped by the current master key."""
    _require_bytes(data)
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(12)
    header = {**_wrap(data_key, ring), "nonce": _b64(nonce)}
    return _pack(header, AESGCM(data_key).encrypt(nonce, data, MAGIC + nonce))


def _require_bytes(data: object) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncryptionError(f"expected bytes, got {type(data).__name__}")


def _split(blob: bytes) -> tuple[dict, bytes]:
    _require_bytes(blob)
    blob = bytes(blob)
    if not blob.startswith(MAGIC):
        raise EncryptionError("not a file encrypted by resilia.encryption")
    line, _, ciphertext = blob[len(MAGIC) :].partition(b"\n")
    try:
        header = json.loads(line)
        for field in ("kid", "wrapped_key", "nonce", "wrap_nonce"):
            if not isinstance(header[field], str):
                raise TypeError(field)
    except (ValueError, KeyError, TypeError):
        raise EncryptionError("the encrypted file's header is damaged") from None
    return header, ciphertext


def _unwrap(header: dict, ring: KeyRing) -> bytes:
    kek = AESGCM(ring.key(header["kid"]))
    try:
        return kek.decrypt(
            base64.b64decode(header["wrap_nonce"]),
            base64.b64decode(header["wrapped_key"]),
            header["kid"].encode(),
        )
    except (InvalidTag, binascii.Error, ValueError):
        raise EncryptionError(
            f"wrong master key {header['kid']!r}, or a damaged header: "
            "the data key cannot be unwrapped"
        ) from None


def decrypt_bytes(blob: bytes, ring: KeyRing) -> bytes:
    """Decrypt ``encrypt_bytes`` output; ``EncryptionError`` if it was altered."""
    header, ciphertext = _split(blob)
    data_key = _unwrap(header, ring)
    try:
        nonce = base64.b64decode(header["nonce"])
        return AESGCM(data_key).decrypt(nonce, ciphertext, MAGIC + nonce)
    except (InvalidTag, binascii.Error, ValueError):
        raise EncryptionError("the encrypted file was modified or truncated") from None


def encrypt_file(source: Path, target: Path, ring: KeyRing) -> Path:
    """Write the encrypted content of ``source`` to ``target`` and return ``target``."""
    target = Path(target)
    target.write_bytes(encrypt_bytes(Path(source).read_bytes(), ring))
    return target


def decrypt_file(source: Path, ring: KeyRing) -> bytes:
    """The clear content of a file written by ``encrypt_file``."""
    return decrypt_bytes(Path(source).read_bytes(), ring)


def key_id(path: Path) -> str:
    """The id of the master key that wraps the file's data key."""
    return _split(Path(path).read_bytes())[0]["kid"]


def rewrap_file(path: Path, ring: KeyRing) -> str:
    """Rotation: wrap the file's data key with the ring's current master key.

    Only the header changes; the ciphertext is kept byte for byte. The new file
    replaces the old one atomically. Returns the id of the previous master key.
    """
    path = Path(path)
    header, ciphertext = _split(path.read_bytes())
    data_key = _unwrap(header, ring)
    new_header = {**header, **_wrap(data_key, ring)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(_pack(new_header, ciphertext))
    tmp.replace(path)
    return header["kid"]
