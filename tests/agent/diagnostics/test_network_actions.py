"""Network diagnostics against servers the tests start on 127.0.0.1: nothing leaves the PC."""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
import pytest

from remdiag.vocabulary import DiagnosticState
from tests.agent.diagnostics.conftest import Run
from tests.agent.facts.security.tls_server import issue
from tests.support import free_port


@contextmanager
def tcp_listener() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@contextmanager
def dns_responder() -> Iterator[int]:
    """A UDP DNS server on 127.0.0.1: A and MX for test.example., NXDOMAIN for anything else."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except OSError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text()
            kind = dns.rdatatype.to_text(question.rdtype)
            if name != "test.example.":
                reply.set_rcode(dns.rcode.NXDOMAIN)
            elif kind == "A":
                reply.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.7"))
            elif kind == "MX":
                reply.answer.append(dns.rrset.from_text(name, 60, "IN", "MX", "10 mail.example."))
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        sock.close()


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "https://127.0.0.1/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def https_server(tmp_path: Path) -> Iterator[int]:
    issued = issue("127.0.0.1", valid_from_days=-1, valid_to_days=30)
    cert, key = issued.write(tmp_path, "server")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_tcp_connect_open_and_closed(run: Run) -> None:
    with tcp_listener() as port:
        outcome = await run("tcp_connect", {"host": "127.0.0.1", "port": port, "count": 2})
    assert outcome.state is DiagnosticState.DONE, outcome
    assert outcome.output["open"] is True
    assert outcome.output["received"] == 2 and outcome.output["avg_ms"] is not None
    closed = await run("tcp_connect", {"host": "127.0.0.1", "port": free_port(), "count": 1})
    assert closed.state is DiagnosticState.DONE
    assert closed.output["open"] is False and closed.output["last_error"]


async def test_ping_loopback_says_which_method(run: Run) -> None:
    with tcp_listener() as port:
        outcome = await run("ping", {"host": "127.0.0.1", "count": 2, "tcp_port": port})
    assert outcome.state is DiagnosticState.DONE, outcome
    assert outcome.output["method"] in {"icmp", f"tcp:{port}"}
    assert outcome.output["received"] == 2
    assert outcome.output["note"]


async def test_dns_lookup_names_the_answering_server(run: Run) -> None:
    with dns_responder() as port:
        args = {"name": "test.example", "types": ["A", "MX", "AAAA"], "server": "127.0.0.1"}
        outcome = await run("dns_lookup", args | {"server_port": port})
        missing = await run(
            "dns_lookup", {"name": "nope.example", "server": "127.0.0.1", "server_port": port}
        )
    assert outcome.state is DiagnosticState.DONE, outcome
    by_type = {lookup["record_type"]: lookup for lookup in outcome.output["lookups"]}
    assert by_type["A"]["records"] == ["192.0.2.7"]
    assert by_type["A"]["server"] == f"127.0.0.1:{port}"
    assert by_type["A"]["rcode"] == "NOERROR" and by_type["A"]["ttl"] == 300
    assert by_type["MX"]["records"] == ["10 mail.example."]
    assert by_type["AAAA"]["records"] == [] and by_type["AAAA"]["error"] is None
    assert outcome.output["servers"] == [f"127.0.0.1:{port}"]
    assert missing.output["lookups"][0]["rcode"] == "NXDOMAIN"


async def test_dns_lookup_times_out_on_a_silent_server(run: Run) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        args = {"name": "test.example", "types": ["A"], "server": "127.0.0.1"}
        outcome = await run(
            "dns_lookup", args | {"server_port": silent.getsockname()[1], "timeout_seconds": 0.3}
        )
    assert outcome.state is DiagnosticState.DONE
    assert "no answer within" in outcome.output["lookups"][0]["error"]


async def test_http_check_reports_status_redirect_and_certificate(run: Run, tmp_path: Path) -> None:
    with https_server(tmp_path) as port:
        outcome = await run("http_check", {"url": f"https://127.0.0.1:{port}/start?x=1"})
    assert outcome.state is DiagnosticState.DONE, outcome
    out = outcome.output
    assert out["status"] == 302 and out["error"] == ""
    assert out["redirect_to"] == "https://127.0.0.1/elsewhere"  # reported, not followed
    assert out["connect_ms"] is not None and out["first_byte_ms"] is not None
    tls = out["tls"]
    assert tls["subject"] == "CN=127.0.0.1" and tls["issuer"] == "CN=127.0.0.1"
    assert tls["san"] == ["127.0.0.1"]
    assert 29 < tls["days_left"] <= 30 and tls["not_after"]
    assert tls["verified"] is False and tls["verify_error"]  # self-signed


async def test_http_check_refused_connection(run: Run) -> None:
    outcome = await run("http_check", {"url": f"http://127.0.0.1:{free_port()}/"})
    assert outcome.state is DiagnosticState.DONE
    assert outcome.output["status"] is None and "cannot connect" in outcome.output["error"]


async def test_traceroute_loopback_or_unknown_with_reason(run: Run) -> None:
    outcome = await run("traceroute", {"host": "127.0.0.1", "max_hops": 3})
    assert outcome.state is DiagnosticState.DONE, outcome
    if os.geteuid() == 0:  # raw sockets permitted: loopback is the first hop
        assert outcome.output["method"] == "icmp-ttl"
        assert outcome.output["reached"] is True
        assert outcome.output["hops"][0]["address"] == "127.0.0.1"
    elif outcome.output.get("status") == "unknown":
        assert "raw ICMP" in outcome.output["reason"]


async def test_interfaces_and_routes(run: Run) -> None:
    outcome = await run("interfaces_routes")
    assert outcome.state is DiagnosticState.DONE, outcome
    names = [i["name"] for i in outcome.output["interfaces"]["interfaces"]]
    assert "lo" in names or any(n.startswith("lo") for n in names)
    routes = outcome.output["routes"]
    assert "routes" in routes or routes["status"] == "unknown"


@pytest.mark.parametrize("host", ["127.0.0.1"])
async def test_network_action_refuses_bad_port(run: Run, host: str) -> None:
    outcome = await run("tcp_connect", {"host": host, "port": 70000})
    assert outcome.state is DiagnosticState.REFUSED
    assert "port" in outcome.error
