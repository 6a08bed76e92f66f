#!/usr/bin/env python3
"""Make a throw-away CA and a server certificate for localhost/127.0.0.1 with trustme.

Usage::

    python tests/peer/make_certs.py DIR [--key-type ecdsa|rsa]

Writes into DIR (created if needed):

    ca.pem           the CA certificate: what a client must trust
    server-cert.pem  the server certificate chain (leaf first)
    server-key.pem   the server's private key

and prints one line per file, ``CA <path>``, ``CERT <path>``, ``KEY <path>``. With ``--client``
also (for mutual TLS):

    client-cert.pem  a client certificate chain from the same CA
    client-key.pem   its private key (PKCS#8)
    other-key.pem    a private key that belongs to no certificate here (a mismatch)

printed as ``CLIENT_CERT <path>``, ``CLIENT_KEY <path>``, ``OTHER_KEY <path>``.
The server certificate's subjectAltName holds DNS:localhost, IP:127.0.0.1 and IP:::1,
so both wss://localhost:<port>/ and wss://127.0.0.1:<port>/ verify.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

import trustme

IDENTITIES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CertPaths:
    ca: str
    cert: str
    key: str
    client_cert: str = ""
    client_key: str = ""
    other_key: str = ""


def make_certs(directory: str, key_type: str = "ecdsa", client: bool = False) -> CertPaths:
    """Create the CA and server certificate files in `directory`; return their paths."""
    os.makedirs(directory, exist_ok=True)
    kt = trustme.KeyType.RSA if key_type == "rsa" else trustme.KeyType.ECDSA
    ca = trustme.CA(key_type=kt, organization_name="ctrlchan test CA")
    leaf = ca.issue_cert(*IDENTITIES, key_type=kt)
    paths = CertPaths(
        ca=os.path.join(directory, "ca.pem"),
        cert=os.path.join(directory, "server-cert.pem"),
        key=os.path.join(directory, "server-key.pem"),
        client_cert=os.path.join(directory, "client-cert.pem") if client else "",
        client_key=os.path.join(directory, "client-key.pem") if client else "",
        other_key=os.path.join(directory, "other-key.pem") if client else "",
    )
    ca.cert_pem.write_to_path(paths.ca)
    with open(paths.cert, "wb") as f:
        for pem in leaf.cert_chain_pems:
            f.write(pem.bytes())
    leaf.private_key_pem.write_to_path(paths.key)
    if not client:
        return paths
    client_leaf = ca.issue_cert("ctrlchan-client@example.test", key_type=kt)
    with open(paths.client_cert, "wb") as f:
        for pem in client_leaf.cert_chain_pems:
            f.write(pem.bytes())
    client_leaf.private_key_pem.write_to_path(paths.client_key)
    ca.issue_cert("other.example.test", key_type=kt).private_key_pem.write_to_path(paths.other_key)
    return paths


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="throw-away CA + localhost server certificate")
    parser.add_argument("directory")
    parser.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa")
    parser.add_argument("--client", action="store_true", help="also a client certificate and a stray key")
    args = parser.parse_args(argv)
    paths = make_certs(args.directory, args.key_type, args.client)
    print(f"CA {paths.ca}")
    print(f"CERT {paths.cert}")
    print(f"KEY {paths.key}")
    if args.client:
        print(f"CLIENT_CERT {paths.client_cert}")
        print(f"CLIENT_KEY {paths.client_key}")
        print(f"OTHER_KEY {paths.other_key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
