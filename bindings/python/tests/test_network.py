"""Real networks from Python: tinyproxy (HTTP CONNECT + BasicAuth) from tests/peer/proxies.py,
the websockets peer behind ssl, public-key pins, the server certificate and TLS facts."""

from __future__ import annotations

import base64
import hashlib
import ssl
from typing import Iterator

import pytest

from ctrlchan import EventKind, InvalidArgumentError, MessageWebSocket, ProxyFailedError, Runtime, TlsFailedError
from conftest import wait_event
from peer import PeerServer
from proxies import ProxyUnavailable, RunningProxy, start_tinyproxy


@pytest.fixture(scope="module")
def tinyproxy() -> Iterator[RunningProxy]:
    try:
        with start_tinyproxy() as p:
            yield p
    except ProxyUnavailable as e:  # pragma: no cover - setup-tools.sh installs it
        pytest.skip(str(e))


def _pin_of_der(der: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _echo(rt: Runtime, ws: MessageWebSocket, url: str) -> None:
    ws.connect(url, timeout=10)
    ws.send(b"via")
    ev = wait_event(rt, [EventKind.PUSH_NOTIFICATION], timeout=10)
    assert ev.data == b"via"


def test_proxy_explicit_and_wrong_credentials(rt: Runtime, server: PeerServer, tinyproxy: RunningProxy) -> None:
    before = tinyproxy.tunnels()
    ws = MessageWebSocket(rt)
    ws.control.proxy = tinyproxy.uri
    assert ws.control.proxy == tinyproxy.uri
    _echo(rt, ws, server.url("/echo"))
    assert tinyproxy.tunnels() == before + 1

    bad = MessageWebSocket(rt)
    bad.control.proxy = tinyproxy.uri_with(password="py-wrong-secret")
    with pytest.raises(ProxyFailedError) as err:
        bad.connect(server.url("/echo"), timeout=10)
    assert "py-wrong-secret" not in str(err.value)
    assert "401" in str(err.value) or "407" in str(err.value)


def test_wss_through_proxy_reports_certificate_and_tls(
    rt: Runtime, tls_server: PeerServer, tinyproxy: RunningProxy
) -> None:
    ws = MessageWebSocket(rt)
    ws.control.proxy = tinyproxy.uri
    assert ws.information.server_certificate is None and ws.information.tls_version == ""
    assert tls_server.ca_pem_path is not None
    with open(tls_server.ca_pem_path, "rb") as f:
        ws.control.add_trusted_ca_pem(f.read())
    _echo(rt, ws, tls_server.url("/echo", host="localhost"))
    der = ws.information.server_certificate
    assert der is not None
    assert ssl.DER_cert_to_PEM_cert(der).startswith("-----BEGIN CERTIFICATE-----")
    assert ws.information.tls_version == "TLSv1.3"
    assert ws.information.tls_cipher_suite.startswith("TLS_")

    # Pinning that certificate's key works; another key fails with TLS_FAILED.
    pinned = MessageWebSocket(rt)
    pinned.control.add_trusted_ca_pem(open(tls_server.ca_pem_path, "rb").read())
    pinned.control.proxy = ""
    pinned.control.pinned_public_keys = [_pin_of_der(der)]
    assert pinned.control.pinned_public_keys == (_pin_of_der(der),)
    _echo(rt, pinned, tls_server.url("/echo", host="localhost"))
    wrong = MessageWebSocket(rt)
    wrong.control.add_trusted_ca_pem(open(tls_server.ca_pem_path, "rb").read())
    wrong.control.proxy = ""
    wrong.control.add_pinned_public_key("sha256//" + base64.b64encode(b"\0" * 32).decode())
    with pytest.raises(TlsFailedError):
        wrong.connect(tls_server.url("/echo", host="localhost"), timeout=10)


def test_bad_inputs_are_invalid_argument(rt: Runtime, tmp_path: object) -> None:
    ws = MessageWebSocket(rt)
    with pytest.raises(InvalidArgumentError) as err:
        ws.control.proxy = "gopher://user:py-secret@127.0.0.1:1"
    assert "py-secret" not in str(err.value)
    with pytest.raises(InvalidArgumentError):
        ws.control.add_pinned_public_key("md5//nope")
    import trustme

    ca = trustme.CA()
    client = ca.issue_cert("client.example")
    other = ca.issue_cert("other.example")
    with pytest.raises(InvalidArgumentError):
        ws.control.client_certificate = (client.cert_chain_pems[0].bytes(), other.private_key_pem.bytes())
    ws.control.client_certificate = (client.cert_chain_pems[0].bytes(), client.private_key_pem.bytes())
    assert ws.control.client_certificate == client.cert_chain_pems[0].bytes()
    with pytest.raises(TypeError):
        ws.control.client_certificate = b"just one"  # type: ignore[assignment]
