"""network.unexpected_listener judged on recorded listening sockets."""

from __future__ import annotations

import socket
from typing import Any

import psutil
import pytest
from pydantic import ValidationError

from agent.checks.base import Outcome
from agent.checks.unexpected_listener import UnexpectedListener
from agent.facts.live import LiveFacts
from agent.facts.models import Unavailable
from agent.facts.network.models import Listener, ListenersFacts
from remdiag.vocabulary import CheckStatus

CHECK = UnexpectedListener()
DEFAULTS = CHECK.thresholds()

POSTGRES_LOCAL = Listener("tcp", "127.0.0.1", 5432, "loopback", 812, "postgres")
REDIS_LOCAL6 = Listener("tcp", "::1", 6379, "loopback", 901, "redis-server")
MDNS = Listener("udp", "0.0.0.0", 5353, "all", 640, "avahi-daemon")
DHCP = Listener("udp", "0.0.0.0", 68, "all", 655, "dhclient")
UDP_CLIENT = Listener("udp", "0.0.0.0", 51234, "all", 2210, "firefox")
SSH = Listener("tcp", "0.0.0.0", 22, "all", 700, "sshd")
SSH6 = Listener("tcp", "::", 22, "all", 700, "sshd")
DEV_SERVER = Listener("tcp", "0.0.0.0", 8000, "all", 3100, "python3")
HIDDEN = Listener("tcp", "::", 9000, "all", None, "")
ON_LAN = Listener("tcp", "192.0.2.20", 8080, "specific", 3200, "java")
VNC = Listener("tcp", "0.0.0.0", 5900, "all", 4100, "x11vnc")

RECORDED = [
    ListenersFacts((DHCP, POSTGRES_LOCAL, MDNS, REDIS_LOCAL6, UDP_CLIENT)),
    ListenersFacts((POSTGRES_LOCAL, DEV_SERVER)),
    ListenersFacts((VNC,)),
    ListenersFacts(()),
]


def values(outcome: Outcome) -> dict[str, Any]:
    return {value.name: value.value for value in outcome.values}


def test_loopback_listeners_and_os_discovery_are_fine() -> None:
    facts = ListenersFacts((DHCP, POSTGRES_LOCAL, MDNS, REDIS_LOCAL6, UDP_CLIENT, ON_LAN))
    outcome = CHECK.evaluate(facts, DEFAULTS)
    assert outcome.status is CheckStatus.OK
    # The UDP client socket on an ephemeral port is not counted as a listener.
    assert outcome.summary == "no unexpected port: 2 of 5 listeners on all interfaces, all allowed"
    assert values(outcome) == {
        "listeners": 5,
        "listening_on_all_interfaces": 2,
        "unexpected_ports": 0,
    }


def test_a_service_on_all_interfaces_warns_naming_port_and_process() -> None:
    facts = ListenersFacts((SSH, SSH6, DEV_SERVER, HIDDEN, POSTGRES_LOCAL))
    outcome = CHECK.evaluate(facts, DEFAULTS)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == (
        "3 unexpected ports open on all interfaces: "
        "tcp/22 (sshd); tcp/8000 (python3); tcp/9000 (process unknown)"
    )
    assert values(outcome)["unexpected_ports"] == 3
    assert values(outcome)["unexpected"] == (
        "tcp/22 (sshd), tcp/8000 (python3), tcp/9000 (process unknown)"
    )


def test_allowed_ports_and_processes_are_policy() -> None:
    thresholds = CHECK.thresholds(
        {"allowed_ports": [8000, "tcp/9000"], "allowed_processes": ["SSHD"]}
    )
    facts = ListenersFacts((SSH, SSH6, DEV_SERVER, HIDDEN))
    assert CHECK.evaluate(facts, thresholds).status is CheckStatus.OK


def test_a_hidden_process_is_never_allowed_by_name() -> None:
    thresholds = CHECK.thresholds({"allowed_processes": ["python3"]})
    outcome = CHECK.evaluate(ListenersFacts((DEV_SERVER, HIDDEN)), thresholds)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary.endswith("tcp/9000 (process unknown)")


def test_a_port_rule_names_its_protocol() -> None:
    thresholds = CHECK.thresholds({"allowed_ports": ["udp/8000"]})
    outcome = CHECK.evaluate(ListenersFacts((DEV_SERVER,)), thresholds)
    assert outcome.status is CheckStatus.WARNING


def test_ephemeral_udp_is_judged_when_asked() -> None:
    thresholds = CHECK.thresholds({"ignored_udp_ports_from": None})
    outcome = CHECK.evaluate(ListenersFacts((UDP_CLIENT,)), thresholds)
    assert outcome.status is CheckStatus.WARNING
    assert outcome.summary == "1 unexpected port open on all interfaces: udp/51234 (firefox)"


def test_a_remote_control_port_is_critical() -> None:
    outcome = CHECK.evaluate(ListenersFacts((VNC, DEV_SERVER)), DEFAULTS)
    assert outcome.status is CheckStatus.CRITICAL
    assert outcome.summary == (
        "2 unexpected ports open on all interfaces: tcp/5900 (x11vnc); tcp/8000 (python3) "
        "(critical: remote control port)"
    )


def test_an_allowed_remote_control_port_is_fine() -> None:
    thresholds = CHECK.thresholds({"allowed_ports": ["tcp/5900"]})
    assert CHECK.evaluate(ListenersFacts((VNC,)), thresholds).status is CheckStatus.OK


def test_a_long_list_is_cut_short() -> None:
    many = tuple(Listener("tcp", "0.0.0.0", 9000 + i, "all", 1, "srv") for i in range(13))
    outcome = CHECK.evaluate(ListenersFacts(many), DEFAULTS)
    assert outcome.summary.endswith("tcp/9009 (srv); and 3 more")
    assert values(outcome)["unexpected_ports"] == 13


def test_nothing_listening_is_ok() -> None:
    outcome = CHECK.evaluate(ListenersFacts(()), DEFAULTS)
    assert outcome.status is CheckStatus.OK


def test_facts_that_could_not_be_gathered_are_unknown() -> None:
    reason = "no permission to list the listening sockets (macOS needs root)"
    outcome = CHECK.judge(Unavailable(reason), DEFAULTS)
    assert outcome.status is CheckStatus.UNKNOWN
    assert outcome.summary == f"could not measure: {reason}"


def test_port_rules_are_normalised() -> None:
    thresholds = CHECK.thresholds({"allowed_ports": [445, " TCP/0139 ", "udp/53"]})
    assert thresholds.allowed_ports == ("445", "tcp/139", "udp/53")


@pytest.mark.parametrize(
    "overrides",
    [
        {"allowed_ports": [0]},
        {"allowed_ports": [65536]},
        {"allowed_ports": ["sctp/80"]},
        {"allowed_ports": ["http"]},
        {"allowed_ports": [True]},
        {"allowed_processes": [""]},
        {"critical_ports": ["tcp/"]},
        {"ignored_udp_ports_from": 53},
        {"allowed_addresses": ["0.0.0.0"]},
    ],
)
def test_invalid_thresholds_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CHECK.thresholds(overrides)


def test_gathers_and_judges_a_listener_of_ours_on_this_machine() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("0.0.0.0", 0))  # every interface, but nothing outside connects
        server.listen()
        port = server.getsockname()[1]
        facts = CHECK.gather(LiveFacts(), DEFAULTS)
        if isinstance(facts, Unavailable):
            pytest.skip(facts.reason)
        flagged = CHECK.judge(facts, DEFAULTS)
        allowed = CHECK.thresholds({"allowed_ports": [port]})
        allowing = CHECK.judge(facts, allowed)
    me = psutil.Process().name()
    assert flagged.status in (CheckStatus.WARNING, CheckStatus.CRITICAL)
    assert f"tcp/{port} ({me})" in str(values(flagged)["unexpected"])
    assert f"tcp/{port} " not in str(values(allowing).get("unexpected", ""))
    declared = {(spec.name, spec.unit) for spec in CHECK.emits}
    assert {(value.name, value.unit) for value in flagged.values} <= declared
