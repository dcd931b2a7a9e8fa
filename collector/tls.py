"""The collector's own CA: created on first start, signs its server certificate and agents' CSRs.

Everything here is plain `cryptography`; gRPC only sees PEM bytes. Keys are EC P-256, written
owner-only (0600) into the collector's data directory (0700), each file atomically.

grpcio's Python API can either require a client certificate or not ask for one at all (it has
no "ask, verify if given" mode), so a TLS collector serves two ports: the agents' port requires
a certificate signed by this CA (mutual TLS: Connect), and the enrollment port does not ask for
one (Enroll, which is how an agent gets its certificate).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from remdiag.files import write_atomic

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.pem"
SERVER_KEY_FILE = "server.key"
SERVER_CERT_FILE = "server.pem"

CA_LIFETIME = timedelta(days=20 * 365)
# Agents do not renew their certificate yet (re-enrolling does): keep it long-lived.
# Revocation does not rely on expiry: the collector checks each Connect against the database.
CLIENT_LIFETIME = timedelta(days=10 * 365)
SERVER_LIFETIME = timedelta(days=825)
# A server certificate closer than this to its end is renewed at start-up.
SERVER_RENEW_BEFORE = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=5)
MAX_CSR_BYTES = 16 * 1024

PrivateKey = ec.EllipticCurvePrivateKey


class InvalidCsrError(ValueError):
    """A certificate signing request the collector will not sign; the message says why."""


class PkiError(RuntimeError):
    """The data directory holds a CA the collector cannot use; the message says what to do."""


@dataclass(frozen=True)
class IssuedCertificate:
    pem: bytes
    sha256: str
    """Hex SHA-256 of the DER certificate: what the collector keeps to recognise it."""


@dataclass(frozen=True)
class PeerCertificate:
    """The verified client certificate of a TLS peer, as gRPC's auth context reports it."""

    common_name: str
    sha256: str


@dataclass(frozen=True)
class Pki:
    """The collector's CA and server certificate, loaded from (or created in) its data dir."""

    data_dir: Path
    ca_key: PrivateKey
    ca_certificate: x509.Certificate
    server_key_pem: bytes
    server_certificate_pem: bytes

    @property
    def ca_pem(self) -> bytes:
        return self.ca_certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def ca_path(self) -> Path:
        return self.data_dir / CA_CERT_FILE

    def server_credentials(self, require_client_certificate: bool) -> grpc.ServerCredentials:
        """TLS for a port: with mutual TLS, the client must show a certificate from this CA."""
        return grpc.ssl_server_credentials(
            [(self.server_key_pem, self.server_certificate_pem)],
            root_certificates=self.ca_pem if require_client_certificate else None,
            require_client_auth=require_client_certificate,
        )

    def issue_client_certificate(
        self, csr: x509.CertificateSigningRequest, agent_id: str, now: datetime
    ) -> IssuedCertificate:
        """Sign the agent's key: CN = agent id whatever the CSR asked for, client auth only."""
        public_key = csr.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(agent_id))
            .issuer_name(self.ca_certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + CLIENT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._authority_key_identifier(), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        return issued(certificate)

    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key())


def issued(certificate: x509.Certificate) -> IssuedCertificate:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return IssuedCertificate(
        certificate.public_bytes(serialization.Encoding.PEM), hashlib.sha256(der).hexdigest()
    )


def parse_csr(pem: bytes) -> x509.CertificateSigningRequest:
    """The CSR in `pem`, if it is one the collector signs: EC P-256/P-384 or RSA >= 2048 bits,
    signed by its own key."""
    if len(pem) > MAX_CSR_BYTES:
        raise InvalidCsrError(f"csr_pem is larger than {MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError:
        raise InvalidCsrError("csr_pem is not a PEM certificate signing request") from None
    try:
        public_key = csr.public_key()
    except (ValueError, TypeError):  # an unsupported algorithm
        raise InvalidCsrError("csr_pem: unsupported key type") from None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1 | ec.SECP384R1):
            raise InvalidCsrError("csr_pem: EC keys must be P-256 or P-384")
    elif isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise InvalidCsrError("csr_pem: RSA keys must have at least 2048 bits")
    else:
        raise InvalidCsrError("csr_pem: the key must be EC (P-256, P-384) or RSA")
    try:
        valid = csr.is_signature_valid
    except (InvalidSignature, ValueError):
        valid = False
    if not valid:
        raise InvalidCsrError("csr_pem: the request is not signed by its own key")
    return csr


def peer_certificate(auth_context: Mapping[str, Sequence[bytes]]) -> PeerCertificate | None:
    """The client certificate gRPC verified for this call, or None (no TLS, or none shown)."""
    if b"ssl" not in auth_context.get("transport_security_type", ()):
        return None
    names = auth_context.get("x509_common_name", ())
    pems = auth_context.get("x509_pem_cert", ())
    if len(names) != 1 or len(pems) != 1:
        return None
    try:
        certificate = x509.load_pem_x509_certificate(pems[0])
    except ValueError:
        return None
    return PeerCertificate(names[0].decode("utf-8", "replace"), issued(certificate).sha256)


def load_or_create(data_dir: Path, server_names: Iterable[str], now: datetime) -> Pki:
    """The CA and server certificate in `data_dir`: created on first start; the server
    certificate is issued again when it lacks a name, nears its end or has another issuer."""
    names = _unique(server_names)
    if not names:
        raise PkiError("no name for the server certificate: set tls.server_names")
    _private_dir(data_dir)
    ca_key_path, ca_path = data_dir / CA_KEY_FILE, data_dir / CA_CERT_FILE
    if ca_key_path.exists() != ca_path.exists():
        missing = ca_path if ca_key_path.exists() else ca_key_path
        raise PkiError(
            f"{missing} is missing while its pair exists: restore it from a backup "
            f"(a new CA would lock out every enrolled agent), or remove both to start afresh"
        )
    if ca_key_path.exists():
        ca_key, ca_certificate = _load_ca(ca_key_path, ca_path)
    else:
        ca_key, ca_certificate = _new_ca(now)
        write_private(ca_key_path, _key_pem(ca_key))
        write_public(ca_path, ca_certificate.public_bytes(serialization.Encoding.PEM))
    server_key_path, server_path = data_dir / SERVER_KEY_FILE, data_dir / SERVER_CERT_FILE
    current = _load_server(server_key_path, server_path)
    if current is None or not _server_fits(current[1], ca_certificate, names, now):
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_certificate = _new_server(server_key, ca_key, ca_certificate, names, now)
        write_private(server_key_path, _key_pem(server_key))
        write_public(server_path, server_certificate.public_bytes(serialization.Encoding.PEM))
        current = (_key_pem(server_key), server_certificate)
    return Pki(
        data_dir,
        ca_key,
        ca_certificate,
        current[0],
        current[1].public_bytes(serialization.Encoding.PEM),
    )


def default_server_names(listen_host: str) -> list[str]:
    """Names agents may use for a collector listening on `listen_host`: the host itself, or
    this machine's names when it listens on every address; loopback always."""
    host = listen_host.strip("[]")
    names: list[str] = []
    try:
        wildcard = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard:
        names += [socket.gethostname(), socket.getfqdn()]
    elif host:
        names.append(host)
    return _unique([*names, "localhost", "127.0.0.1", "::1"])


def write_private(path: Path, data: bytes) -> None:
    write_atomic(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    write_atomic(path, data, 0o644)


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def _unique(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for name in names:
        name = name.strip().strip("[]")
        if name and name not in seen:
            seen.append(name)
    return seen


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _new_ca(now: datetime) -> tuple[PrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(f"remdiag collector CA {now:%Y-%m-%d}")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _load_ca(key_path: Path, cert_path: Path) -> tuple[PrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise PkiError(f"cannot load the CA in {key_path.parent}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{key_path}: expected an EC private key")
    if certificate.public_key() != key.public_key():
        raise PkiError(f"{cert_path} does not belong to {key_path}")
    return key, certificate


def _load_server(key_path: Path, cert_path: Path) -> tuple[bytes, x509.Certificate] | None:
    try:
        key_pem = key_path.read_bytes()
        key = serialization.load_pem_private_key(key_pem, password=None)
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError, TypeError):
        return None  # missing or damaged: issue a new one
    if certificate.public_key() != key.public_key():
        return None
    return key_pem, certificate


def _server_fits(
    certificate: x509.Certificate, ca: x509.Certificate, names: list[str], now: datetime
) -> bool:
    if (
        certificate.issuer != ca.subject
        or certificate.not_valid_after_utc - now < SERVER_RENEW_BEFORE
    ):
        return False
    try:
        certificate.verify_directly_issued_by(ca)
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return set(_general_names(names)) <= set(san)


def _general_names(names: list[str]) -> list[x509.GeneralName]:
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return general


def _new_server(
    key: PrivateKey,
    ca_key: PrivateKey,
    ca: x509.Certificate,
    names: list[str],
    now: datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + SERVER_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
