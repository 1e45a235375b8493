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
    leaf = ca.issue_cert(*names)
    paths = ServerCertificate(
        directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    )
    ca.cert_pem.write_to_path(str(paths.ca_path))
    leaf.private_key_pem.write_to_path(str(paths.key_path))
    os.chmod(paths.key_path, 0o600)
    with paths.cert_path.open("wb") as chain:
        for blob in leaf.cert_chain_pems:
            chain.write(blob.bytes())
    return paths
