"""TLS on a real collector (collector/tls.py, collector/auth.py): its CA and keys on disk, mutual
TLS on Connect, certificates bound to agent ids, revocation of live streams, console on loopback.

Every test runs TLS on 127.0.0.1 (`tls.enabled`), with the server certificate valid for
127.0.0.1 and localhost, over SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import stat
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from agent.config import TlsSettings as AgentTls
from agent.enroll import KeyAndCsr, new_key_and_csr, open_channel
from agent.identity import Identity
from collector import fleet, tls, tokens
from collector.auth import is_loopback_peer
from collector.client import ConsoleClient
from collector.config import CollectorSettings, TlsSettings
from collector.server import Collector, serve
from collector.store.models import Agent
from remdiag.v1 import agent_pb2, agent_pb2_grpc, console_pb2, console_pb2_grpc
from tests.collector.conftest import add_people, as_, token_of
from tests.collector.factories import batch, counts, hello, identity, pb_result
from tests.support import eventually

AGENT_TLS = AgentTls()


def settings_for(store_url: str, data_dir: Path, **more: object) -> CollectorSettings:
    return CollectorSettings.model_validate(
        {
            "listen": "127.0.0.1:0",
            "database_url": store_url,
            "allow_open_enrollment": False,
            "tls": TlsSettings(enabled=True),
            "data_dir": data_dir,
            "revocation_check_seconds": 0.2,
            **more,
        }
    )


@pytest.fixture
async def collector(store_url: str, tmp_path: Path) -> AsyncIterator[Collector]:
    running = await serve(settings_for(store_url, tmp_path / "collector-data"))
    await running.store.run(add_people)
    try:
        yield running
    finally:
        await running.stop()


@dataclass(frozen=True)
class Enrolled:
    identity: Identity
    certificate: x509.Certificate


def ca_pem(collector: Collector) -> bytes:
    assert collector.pki is not None
    return collector.pki.ca_pem


def agents_address(collector: Collector) -> str:
    return f"127.0.0.1:{collector.port}"


def enroll_address(collector: Collector) -> str:
    return f"127.0.0.1:{collector.enroll_port}"


def token(collector: Collector, uses: int = 1) -> str:
    now = datetime.now(UTC)
    return collector.store.call(lambda s: tokens.create(s, now, timedelta(hours=1), uses)).secret


async def enroll(
    collector: Collector, n: int = 1, csr: KeyAndCsr | None = None, secret: str | None = None
) -> Enrolled:
    """Enroll machine `n` over TLS, as the agent does: its own key, a CSR, the pinned CA."""
    csr = csr or new_key_and_csr(f"pc-{n}")
    request = agent_pb2.EnrollRequest(
        enrollment_token=secret or token(collector),
        machine=identity(n),
        agent_version="0.1.0",
        csr_pem=csr.csr_pem,
    )
    async with open_channel(enroll_address(collector), ca_pem(collector)) as channel:
        reply = await agent_pb2_grpc.AgentServiceStub(channel).Enroll(request)
    assert reply.ca_certificate_pem == ca_pem(collector)
    return Enrolled(
        Identity(
            reply.agent_id,
            reply.credential,
            agents_address(collector),
            certificate_pem=reply.client_certificate_pem.decode(),
            key_pem=csr.key_pem,
        ),
        x509.load_pem_x509_certificate(reply.client_certificate_pem),
    )


def metadata(agent_id: str, credential: str) -> tuple[tuple[str, str], ...]:
    return (("x-remdiag-agent-id", agent_id), ("authorization", f"Bearer {credential}"))


async def connect_outcome(
    address: str,
    ca: bytes,
    presented: Identity | None,
    speaks_as: Identity,
    messages: Iterable[agent_pb2.AgentMessage] = (),
) -> tuple[grpc.StatusCode, str]:
    """Connect to `address` presenting `presented`'s certificate, with `speaks_as`'s id and
    credential in the metadata; send hello and `messages`; the call's status."""
    async with open_channel(address, ca, presented) as channel:
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
            iter([hello(speaks_as.agent_id), *messages]),
            metadata=metadata(speaks_as.agent_id, speaks_as.credential),
            timeout=30,
        )
        try:
            async for _ in call:
                pass
        except grpc.aio.AioRpcError:
            pass
        return await call.code(), await call.details() or ""


async def refusal(
    address: str, ca: bytes | None, presented: Identity | None, speaks_as: Identity
) -> tuple[grpc.StatusCode, str]:
    """Open Connect and send nothing: a refusal comes before the collector reads a message.

    (Writing to a call the collector has already refused would race with that refusal.)
    """
    async with open_channel(address, ca, presented) as channel:
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
            metadata=metadata(speaks_as.agent_id, speaks_as.credential), timeout=30
        )
        return await call.code(), await call.details() or ""


# -- the CA and keys on disk -----------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_first_start_creates_the_ca_and_keys_owner_only(
    collector: Collector, tmp_path: Path
) -> None:
    data_dir = tmp_path / "collector-data"
    assert mode(data_dir) == 0o700
    assert mode(data_dir / tls.CA_KEY_FILE) == 0o600
    assert mode(data_dir / tls.SERVER_KEY_FILE) == 0o600
    ca = x509.load_pem_x509_certificate((data_dir / tls.CA_CERT_FILE).read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server = x509.load_pem_x509_certificate((data_dir / tls.SERVER_CERT_FILE).read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)


async def test_a_restart_keeps_the_ca_and_reissues_the_server_certificate_for_new_names(
    store_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = await serve(settings_for(store_url, data_dir))
    ca_before = ca_pem(first)
    server_before = (data_dir / tls.SERVER_CERT_FILE).read_bytes()
    await first.stop()

    again = await serve(settings_for(store_url, data_dir))
    assert ca_pem(again) == ca_before
    assert (data_dir / tls.SERVER_CERT_FILE).read_bytes() == server_before
    await again.stop()

    renamed = await serve(
        settings_for(
            store_url, data_dir, tls=TlsSettings(enabled=True, server_names=["collector.test"])
        )
    )
    try:
        assert ca_pem(renamed) == ca_before
        server = x509.load_pem_x509_certificate((data_dir / tls.SERVER_CERT_FILE).read_bytes())
        names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "collector.test" in names.get_values_for_type(x509.DNSName)
        server.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_before))
    finally:
        await renamed.stop()


def test_a_ca_key_without_its_certificate_is_refused_not_replaced(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    tls.load_or_create(tmp_path, ["localhost"], now)
    (tmp_path / tls.CA_CERT_FILE).unlink()
    key_before = (tmp_path / tls.CA_KEY_FILE).read_bytes()
    with pytest.raises(tls.PkiError, match="restore it"):
        tls.load_or_create(tmp_path, ["localhost"], now)
    assert (tmp_path / tls.CA_KEY_FILE).read_bytes() == key_before


def test_tls_is_on_beyond_loopback_unless_insecure() -> None:
    assert CollectorSettings(listen="0.0.0.0:50051").tls_active
    assert not CollectorSettings(listen="0.0.0.0:50051", insecure=True).tls_active
    assert not CollectorSettings(listen="127.0.0.1:50051").tls_active
    assert CollectorSettings(listen="127.0.0.1:50051", tls=TlsSettings(enabled=True)).tls_active
    assert CollectorSettings(listen="0.0.0.0:50051").enroll_listen_address == "0.0.0.0:50052"


# -- enrollment over TLS -----------------------------------------------------------------------


async def test_enroll_issues_a_certificate_for_the_agent_id_signed_by_the_ca(
    collector: Collector,
) -> None:
    enrolled = await enroll(collector)
    ca = x509.load_pem_x509_certificate(ca_pem(collector))
    enrolled.certificate.verify_directly_issued_by(ca)
    (cn,) = enrolled.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn.value == enrolled.identity.agent_id  # not the host name the CSR asked for
    row = collector.store.call(lambda s: s.get(Agent, enrolled.identity.agent_id))
    assert row is not None
    assert row.certificate_sha256 == tls.issued(enrolled.certificate).sha256


def _weak_rsa_csr() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    ("csr_pem", "says"),
    [
        pytest.param(b"", "csr_pem", id="missing"),
        pytest.param(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", "csr_pem", id="garbage"),
        pytest.param(_weak_rsa_csr(), "2048", id="RSA 1024"),
        pytest.param(b"x" * 20_000, "larger", id="oversized"),
    ],
)
async def test_enroll_without_a_usable_csr_is_invalid_and_writes_nothing(
    collector: Collector, csr_pem: bytes, says: str
) -> None:
    secret = token(collector)
    request = agent_pb2.EnrollRequest(
        enrollment_token=secret, machine=identity(1), agent_version="0.1.0", csr_pem=csr_pem
    )
    async with open_channel(enroll_address(collector), ca_pem(collector)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await agent_pb2_grpc.AgentServiceStub(channel).Enroll(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in (refused.value.details() or "")
    assert collector.store.call(counts)["agents"] == 0
    assert collector.store.call(lambda s: tokens.spend(s, secret, datetime.now(UTC)))


# -- Connect with mutual TLS (fault test f) ----------------------------------------------------


async def test_connect_with_the_agents_own_certificate_streams(collector: Collector) -> None:
    agent = (await enroll(collector)).identity
    code, details = await connect_outcome(
        agents_address(collector),
        ca_pem(collector),
        agent,
        agent,
        [batch(1, pb_result(), pb_result(check_id="network.dns"))],
    )
    assert code == grpc.StatusCode.OK, details
    assert collector.store.call(counts)["check_results"] == 2


async def test_connect_without_a_client_certificate_is_unauthenticated(
    collector: Collector,
) -> None:
    agent = (await enroll(collector)).identity
    # The enrollment port completes TLS without a client certificate: the interceptor refuses.
    code, details = await refusal(enroll_address(collector), ca_pem(collector), None, agent)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "certificate" in details
    # The agents' port does not even finish the handshake without one.
    code, _ = await refusal(agents_address(collector), ca_pem(collector), None, agent)
    assert code == grpc.StatusCode.UNAVAILABLE
    assert collector.store.call(counts)["check_results"] == 0


async def test_agent_b_certificate_with_agent_a_credential_is_permission_denied(
    collector: Collector,
) -> None:
    a = (await enroll(collector, 1)).identity
    b = (await enroll(collector, 2)).identity
    code, details = await refusal(agents_address(collector), ca_pem(collector), b, a)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "another agent" in details
    assert collector.store.call(counts)["check_results"] == 0
    for agent in (a, b):
        row = collector.store.call(lambda s, i=agent.agent_id: s.get(Agent, i))
        assert row is not None and not row.connected


async def test_a_hello_naming_another_agent_is_permission_denied_over_tls(
    collector: Collector,
) -> None:
    a = (await enroll(collector, 1)).identity
    b = (await enroll(collector, 2)).identity
    async with open_channel(agents_address(collector), ca_pem(collector), a) as channel:
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
            iter([hello(b.agent_id, n=2)]), metadata=metadata(a.agent_id, a.credential)
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in call:
                pass
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_certificate_replaced_by_a_later_enrollment_is_refused(
    collector: Collector,
) -> None:
    old = (await enroll(collector)).identity
    new = (await enroll(collector)).identity  # the same machine, enrolling again
    assert new.agent_id == old.agent_id
    # The old certificate with the new credential: the certificate is the stale part.
    stale = Identity(new.agent_id, new.credential, new.collector, old.certificate_pem, old.key_pem)
    code, details = await refusal(agents_address(collector), ca_pem(collector), stale, new)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "replaced" in details
    code, _ = await connect_outcome(agents_address(collector), ca_pem(collector), new, new)
    assert code == grpc.StatusCode.OK


async def test_a_self_signed_certificate_naming_an_agent_gets_no_connection(
    collector: Collector,
) -> None:
    victim = (await enroll(collector)).identity
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, victim.agent_id)])
    now = datetime.now(UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    rogue = Identity(
        victim.agent_id,
        victim.credential,
        victim.collector,
        forged.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )
    code, _ = await refusal(agents_address(collector), ca_pem(collector), rogue, victim)
    assert code == grpc.StatusCode.UNAVAILABLE  # the handshake fails: not signed by the CA


# -- revocation ------------------------------------------------------------------------------


async def test_revoking_an_agent_closes_its_live_stream_and_refuses_it_afterwards(
    collector: Collector,
) -> None:
    agent = (await enroll(collector)).identity
    bystander = (await enroll(collector, 2)).identity
    async with (
        open_channel(agents_address(collector), ca_pem(collector), agent) as channel,
        open_channel(agents_address(collector), ca_pem(collector), bystander) as other,
    ):
        call = agent_pb2_grpc.AgentServiceStub(channel).Connect(
            metadata=metadata(agent.agent_id, agent.credential)
        )
        await call.write(hello(agent.agent_id))
        assert (await call.read()).WhichOneof("payload") == "welcome"
        kept = agent_pb2_grpc.AgentServiceStub(other).Connect(
            metadata=metadata(bystander.agent_id, bystander.credential)
        )
        await kept.write(hello(bystander.agent_id, n=2))
        assert (await kept.read()).WhichOneof("payload") == "welcome"

        revoked = datetime.now(UTC)
        assert collector.store.call(lambda s: fleet.revoke(s, agent.agent_id, revoked)) is True
        # The stream ends by itself, without the agent sending anything (bounded wait).
        code = await asyncio.wait_for(call.code(), 30)
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert "revoked" in (await call.details() or "")

        async def marked_disconnected() -> bool:
            row = await collector.store.run(lambda s: s.get(Agent, agent.agent_id))
            return row is not None and not row.connected

        await eventually(marked_disconnected, "the revoked agent's disconnect")

        # Another agent's stream is untouched: it still gets acks.
        await kept.write(batch(1, pb_result()))
        assert (await kept.read()).ack.acked_through == 1
        await kept.done_writing()
        assert await kept.code() == grpc.StatusCode.OK

    code, details = await refusal(agents_address(collector), ca_pem(collector), agent, agent)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in details


# -- the console stays local -----------------------------------------------------------------


async def test_the_console_answers_a_loopback_caller(collector: Collector) -> None:
    await enroll(collector)
    async with open_channel(enroll_address(collector), ca_pem(collector)) as channel:
        reply = await console_pb2_grpc.ConsoleServiceStub(channel).ListAgents(
            console_pb2.ListAgentsRequest(), metadata=as_("alice")
        )
    assert len(reply.agents) == 1


async def test_the_local_console_socket_serves_the_cli_but_no_agent(
    collector: Collector,
) -> None:
    agent = (await enroll(collector)).identity
    address = collector.console_socket
    assert address is not None and address.startswith("unix:")
    with ConsoleClient(address, token_of("alice")) as client:
        agents = await asyncio.to_thread(client.list_agents)
    assert [a.agent_id for a in agents] == [agent.agent_id]
    # Plaintext, so no client certificate: no agent streams through it.
    code, details = await refusal(address, None, None, agent)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "certificate" in details


@pytest.mark.parametrize(
    ("peer", "local"),
    [
        ("ipv4:127.0.0.1:50000", True),
        ("ipv4:127.8.9.10:1", True),
        ("ipv6:[::1]:50000", True),
        ("ipv6:%5B::1%5D:50000", True),
        ("ipv6:[::ffff:127.0.0.1]:50000", True),
        ("unix:/run/remdiag.sock", True),
        ("ipv4:10.0.0.5:50000", False),
        ("ipv4:192.0.2.1:443", False),
        ("ipv6:[2001:db8::1]:50000", False),
        ("ipv6:[::ffff:10.0.0.5]:50000", False),
        ("ipv4:127.0.0.1.evil.example:1", False),
        ("", False),
    ],
)
def test_which_peers_are_loopback(peer: str, local: bool) -> None:
    assert is_loopback_peer(peer) is local


def test_the_agents_config_enrolls_on_the_next_port_by_default() -> None:
    from agent.enroll import enroll_address as agent_enroll_address

    assert agent_enroll_address("collector.test:50051", AGENT_TLS, True) == "collector.test:50052"
    assert agent_enroll_address("collector.test:50051", AGENT_TLS, False) == "collector.test:50051"
    moved = AgentTls(enroll_address="collector.test:9000")
    assert agent_enroll_address("collector.test:50051", moved, True) == "collector.test:9000"
