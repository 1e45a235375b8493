import base64

import pytest

from resilia.data import generate_customers
from resilia.encryption import (
    EncryptionError,
    KeyRing,
    decrypt_bytes,
    decrypt_file,
    encrypt_bytes,
    encrypt_file,
    key_id,
    new_key,
    rewrap_file,
)


@pytest.fixture
def ring():
    return KeyRing.parse(f"2026-01:{new_key()}")


def test_a_file_round_trips_and_the_content_is_not_readable(tmp_path, ring):
    plain = tmp_path / "customers.csv"
    generate_customers(200, seed=1).to_csv(plain, index=False)
    encrypted = encrypt_file(plain, tmp_path / "customers.csv.enc", ring)
    assert decrypt_file(encrypted, ring) == plain.read_bytes()
    assert b"customer_id" not in encrypted.read_bytes()


def test_two_encryptions_of_the_same_data_differ(ring):
    assert encrypt_bytes(b"same", ring) != encrypt_bytes(b"same", ring)


def test_a_wrong_key_fails_clearly(ring):
    blob = encrypt_bytes(b"secret", ring)
    other = KeyRing.parse(f"2026-01:{new_key()}")
    with pytest.raises(EncryptionError, match="wrong master key '2026-01'"):
        decrypt_bytes(blob, other)


def test_an_unknown_key_id_fails_clearly(ring):
    blob = encrypt_bytes(b"secret", ring)
    with pytest.raises(EncryptionError, match="not in the key ring"):
        decrypt_bytes(blob, KeyRing.parse(f"other:{new_key()}"))


@pytest.mark.parametrize("position", [-1, -20, 40])
def test_any_modified_byte_is_detected(ring, position):
    blob = bytearray(encrypt_bytes(b"x" * 100, ring))
    blob[position] ^= 1
    with pytest.raises(EncryptionError):
        decrypt_bytes(bytes(blob), ring)


def test_a_plain_file_is_refused(ring):
    with pytest.raises(EncryptionError, match="not a file encrypted"):
        decrypt_bytes(b"customer_id,age\n", ring)


def test_rotation_rewraps_the_key_and_keeps_the_ciphertext(tmp_path, ring):
    path = tmp_path / "export.parquet.enc"
    path.write_bytes(encrypt_bytes(b"data" * 1000, ring))
    before = path.read_bytes()
    new = new_key()
    old = base64.b64encode(ring.keys["2026-01"]).decode()
    rotated = KeyRing.parse(f"2026-07:{new},2026-01:{old}")
    assert rewrap_file(path, rotated) == "2026-01"
    assert key_id(path) == "2026-07"
    after = path.read_bytes()
    assert after.split(b"\n", 2)[2] == before.split(b"\n", 2)[2]  # same ciphertext
    only_new = KeyRing.parse(f"2026-07:{new}")
    assert decrypt_file(path, only_new) == b"data" * 1000
    with pytest.raises(EncryptionError):
        decrypt_file(path, ring)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no key"),
        ("nokey", "id:base64"),
        ("k:not base64!", "not valid base64"),
        ("k:AAAA", "3 bytes"),
        # Fixed keys: test ids must be the same in every process (pytest-xdist).
        (f"k:{base64.b64encode(bytes(32)).decode()},k:{'A' * 43}=", "twice"),
    ],
)
def test_a_bad_key_ring_is_refused_with_the_reason(text, message):
    with pytest.raises(EncryptionError, match=message):
        KeyRing.parse(text)


def test_keys_come_from_the_environment_or_a_file(tmp_path):
    key = new_key()
    assert KeyRing.from_environment({"RESILIA_DATA_KEYS": f"a:{key}"}).current == "a"
    path = tmp_path / "keys"
    path.write_text(f"b:{key}\n")
    assert KeyRing.from_environment({}, key_file=path).current == "b"
    with pytest.raises(EncryptionError, match="no master key"):
        KeyRing.from_environment({})
    with pytest.raises(EncryptionError, match="cannot read"):
        KeyRing.from_environment({}, key_file=tmp_path / "missing")


@pytest.mark.parametrize("value", [None, 42, ["k:AAAA"]])
def test_a_key_ring_that_is_not_text_is_refused(value):
    with pytest.raises(EncryptionError, match="must be text"):
        KeyRing.parse(value)


@pytest.mark.parametrize("value", ["text, not bytes", None, 42])
def test_only_bytes_are_encrypted_or_decrypted(ring, value):
    for operation in (encrypt_bytes, decrypt_bytes):
        with pytest.raises(EncryptionError, match="expected bytes"):
            operation(value, ring)
