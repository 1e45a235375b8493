"""A local certificate authority for the book's TLS servers (nginx, PostgreSQL).

``trustme`` (PyPI) makes the CA and the server certificates: no hand-written X.509.
Clients trust the CA's certificate only, never "verify=False".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class ServerCertificate:
    ca_path: Path  # what clients trust
    cert_path: Path  # the server's chain (leaf first)
    key_path: Path  # the server's private key, mode 0600


def local_ca(directory: Path, *names: str) -> ServerCertificate:
    """A new CA in ``directory`` and a certificate for ``names`` (default: loopback)."""
    names = names or ("127.0.0.1", "localhost")
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Resilia cours (CA locale)")
    try:
        leaf = ca.issue_cert(*names)
    except ValueError as error:  # idna's errors for names that are not host names
        raise ValueError(f"no certificate for {names}: {error}") from None
    paths = ServerCertificate(
        directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    )
    ca.cert_pem.write_to_path(str(paths.ca_path))
    paths.key_path.unlink(missing_ok=True)
    # created 0600: the key is never readable by others, not even for an instant
    with os.fdopen(
        os.open(paths.key_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb"
    ) as key:
        key.write(leaf.private_key_pem.bytes())
    with paths.cert_path.open("wb") as chain:
        for blob in leaf.cert_chain_pems:
            chain.write(blob.bytes())
    return paths
