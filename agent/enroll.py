"""Enrollment and channels: the agent's key and CSR, the Enroll call, and how the agent reaches
the collector (plaintext on loopback, otherwise TLS pinned to the collector's CA, presenting
the client certificate enrollment gave it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from agent import __version__
from agent.config import TlsSettings
from agent.identity import Identity, load_pinned_ca, pin_ca, save_identity
from agent.pushback import asked_pause
from remdiag.addresses import is_loopback_address
from remdiag.v1 import agent_pb2, agent_pb2_grpc

ENROLL_TIMEOUT_S = 30.0
MAX_CA_FILE_BYTES = 1024 * 1024


class EnrollmentError(Exception):
    """Enrollment failed; the message is worded for the person at the terminal or in the log."""

    def __init__(
        self, message: str, code: grpc.StatusCode | None = None, asked_pause: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.asked_pause = asked_pause
        """A busy collector's refusal: seconds to wait before trying again (agent/pushback.py)."""


class CaFileError(ValueError):
    """The CA file given cannot be used; the message says why."""


@dataclass(frozen=True)
class KeyAndCsr:
    key_pem: str
    csr_pem: bytes


def new_key_and_csr(hostname: str) -> KeyAndCsr:
    """A fresh EC P-256 key and a CSR for it. The collector names the certificate after the
    agent id, whatever the CSR asks; the host name only helps a person reading the CSR."""
    # cryptography costs the running agent ~10 MB: loaded only when enrolling.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (hostname or "remdiag-agent")[:64])])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyAndCsr(key_pem.decode(), csr.public_bytes(serialization.Encoding.PEM))


def read_ca_file(path: Path) -> bytes:
    """The PEM CA certificate(s) in `path`; CaFileError when it cannot be used."""
    from cryptography import x509

    try:
        with path.open("rb") as source:
            data = source.read(MAX_CA_FILE_BYTES + 1)
    except OSError as exc:
        raise CaFileError(f"cannot read CA file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CA_FILE_BYTES:
        raise CaFileError(f"CA file {path} is larger than {MAX_CA_FILE_BYTES} bytes")
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CaFileError(f"CA file {path} holds no PEM certificate") from None
    return data


def trusted_ca(state_dir: Path, tls: TlsSettings) -> bytes | None:
    """The CA the agent trusts: the one pinned at enrollment, else the configured file."""
    pinned = load_pinned_ca(state_dir)
    if pinned is not None:
        return pinned
    return read_ca_file(tls.ca_file) if tls.ca_file is not None else None


def plaintext_refusal(collector: str, ca_pem: bytes | None, tls: TlsSettings) -> str | None:
    """Why the agent must not talk to `collector` in plaintext, or None when it may."""
    if ca_pem is not None or tls.insecure or is_loopback_address(collector):
        return None
    return (
        f"the collector {collector} is beyond loopback and no CA is known: pass --ca FILE "
        "(the collector's ca.pem; tls.ca_file in the config), or --insecure (tls.insecure) "
        "for a plaintext test collector"
    )


def enroll_address(collector: str, tls: TlsSettings, uses_tls: bool) -> str:
    """Where to enroll: a TLS collector takes enrollments on its own port (by default the
    agents' port + 1), since that port cannot ask for a client certificate."""
    if not uses_tls:
        return collector
    if tls.enroll_address:
        return tls.enroll_address
    host, _, port = collector.rpartition(":")
    return f"{host}:{int(port) + 1}"


def open_channel(
    address: str,
    ca_pem: bytes | None,
    identity: Identity | None = None,
    server_name: str = "",
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """Plaintext without a CA; otherwise TLS trusting only `ca_pem`, presenting the
    identity's client certificate when it has one."""
    if ca_pem is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    key = cert = None
    if identity is not None and identity.has_certificate:
        key, cert = identity.key_pem.encode(), identity.certificate_pem.encode()
    credentials = grpc.ssl_channel_credentials(ca_pem, key, cert)
    extra = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.aio.secure_channel(address, credentials, options=[*options, *extra])


async def enroll(
    *,
    collector: str,
    state_dir: Path,
    token: str,
    machine: agent_pb2.MachineIdentity,
    ca_pem: bytes | None,
    tls: TlsSettings,
    rpc_timeout_s: float = ENROLL_TIMEOUT_S,
) -> Identity:
    """Exchange `token` for an identity, store it (and the CA to pin) in `state_dir`."""
    server_name = tls.server_name
    address = enroll_address(collector, tls, ca_pem is not None)
    key_and_csr = new_key_and_csr(machine.hostname) if ca_pem is not None else None
    request = agent_pb2.EnrollRequest(
        enrollment_token=token,
        machine=machine,
        agent_version=__version__,
        csr_pem=key_and_csr.csr_pem if key_and_csr is not None else b"",
    )
    async with open_channel(address, ca_pem, server_name=server_name) as channel:
        try:
            reply: agent_pb2.EnrollResponse = await agent_pb2_grpc.AgentServiceStub(channel).Enroll(
                request, timeout=rpc_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise EnrollmentError(_describe(exc, address), exc.code(), asked_pause(exc)) from None
    if not reply.agent_id or not reply.credential:
        raise EnrollmentError(f"the collector at {address} answered without an identity")
    identity = Identity(reply.agent_id, reply.credential, collector, server_name=server_name)
    if key_and_csr is not None:
        certificate = _check_certificate(reply, key_and_csr)
        identity = Identity(
            reply.agent_id,
            reply.credential,
            collector,
            certificate_pem=certificate,
            key_pem=key_and_csr.key_pem,
            server_name=server_name,
        )
        # Reached over a channel that trusted `ca_pem`, so the CA it sends is trustworthy.
        pin_ca(state_dir, reply.ca_certificate_pem)
    save_identity(state_dir, identity)
    return identity


def _check_certificate(reply: agent_pb2.EnrollResponse, key_and_csr: KeyAndCsr) -> str:
    """The client certificate in `reply`, if it is for our key and our agent id."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    if not reply.client_certificate_pem or not reply.ca_certificate_pem:
        raise EnrollmentError("the collector answered without a client certificate or its CA")
    try:
        certificate = x509.load_pem_x509_certificate(reply.client_certificate_pem)
        x509.load_pem_x509_certificates(reply.ca_certificate_pem)
        key = serialization.load_pem_private_key(key_and_csr.key_pem.encode(), password=None)
    except ValueError as exc:
        raise EnrollmentError(f"the collector sent an unreadable certificate: {exc}") from None
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if certificate.public_key() != key.public_key():
        raise EnrollmentError("the collector's certificate is not for this agent's key")
    if [n.value for n in common_names] != [reply.agent_id]:
        raise EnrollmentError("the collector's certificate names another agent")
    return reply.client_certificate_pem.decode()


def _describe(exc: grpc.aio.AioRpcError, address: str) -> str:
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"cannot reach the collector's enrollment port at {address}: {details}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"the collector at {address} did not answer in time"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"the collector refused to enroll this machine: {details}"
    return f"the collector refused to enroll this machine ({code.name}): {details}"
