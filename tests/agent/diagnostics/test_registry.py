"""The action registry: what the collector reads, and argument validation the agent applies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.diagnostics.registry import (
    ACTIONS,
    REMEDIATIONS,
    InvalidArguments,
    UnknownAction,
    catalog,
    validate_args,
)

READ_ONLY = {
    "run_check", "run_all_checks", "inventory", "top_processes", "largest_dirs", "ping",
    "tcp_connect", "dns_lookup", "traceroute", "http_check", "interfaces_routes",
    "system_log_errors", "services_status", "pending_updates", "smart_details",
}  # fmt: skip


def test_catalog_lists_every_action_with_typed_arguments() -> None:
    infos = {info.name: info for info in catalog()}
    assert set(infos) == set(ACTIONS)
    assert set(infos) >= READ_ONLY
    assert set(REMEDIATIONS) == {"clear_temp", "restart_service", "flush_dns_cache"}
    for info in infos.values():
        assert info.summary and info.timeout_seconds > 0 and info.output_cap_bytes > 0
        assert info.remediation == (info.name in REMEDIATIONS)
        for arg in info.arguments:
            assert arg.type in {"string", "integer", "number", "boolean", "array"}
            assert arg.description, (info.name, arg.name)
            if arg.required:
                assert arg.default == ""
            else:
                json.loads(arg.default)  # JSON text
    ping = {a.name: a for a in infos["ping"].arguments}
    assert ping["host"].required and ping["host"].type == "string"
    assert ping["count"].type == "integer" and ping["count"].default == "4"
    dns = {a.name: a for a in infos["dns_lookup"].arguments}
    assert dns["types"].type == "array" and "MX" in dns["types"].choices


def test_validate_fills_defaults() -> None:
    assert validate_args("tcp_connect", {"host": "127.0.0.1", "port": "8080"}) == {
        "host": "127.0.0.1",
        "port": 8080,
        "count": 3,
        "timeout_seconds": 3.0,
    }
    assert validate_args("largest_dirs", {"path": "/var//log/"})["path"] == "/var/log"


@pytest.mark.parametrize(
    ("action", "args", "says"),
    [
        ("ping", {"host": "bad host; rm -rf /"}, "host"),
        ("ping", {"host": "-oProxyCommand=x"}, "host"),
        ("ping", {"host": "a" * 300}, "host"),
        ("ping", {"host": "127.0.0.1", "count": 1000}, "count"),
        ("ping", {"host": "127.0.0.1", "extra": 1}, "extra"),
        ("tcp_connect", {"host": "127.0.0.1", "port": 0}, "port"),
        ("tcp_connect", {"host": "127.0.0.1"}, "port"),
        ("largest_dirs", {"path": "/tmp/../etc"}, "'..'"),
        ("largest_dirs", {"path": "relative/dir"}, "absolute"),
        ("largest_dirs", {"path": "/tmp", "max_depth": 5}, "max_depth"),
        ("largest_dirs", {"path": "/tmp\x00/x"}, "NUL"),
        ("dns_lookup", {"name": "example.com", "types": ["ANY"]}, "types"),
        ("dns_lookup", {"name": "example.com", "server": "not-an-ip"}, "server"),
        ("http_check", {"url": "file:///etc/passwd"}, "http"),
        ("http_check", {"url": "https://user:pw@127.0.0.1/"}, "credentials"),
        ("http_check", {"url": "https://127.0.0.1:99999/"}, "port"),
        ("run_check", {"check_id": "no.such_check"}, "unknown check"),
        ("services_status", {"names": ["ok", "bad name"]}, "names"),
        ("smart_details", {"device": "/dev/../etc/passwd"}, "device"),
        ("restart_service", {"name": "ssh; reboot"}, "name"),
        ("clear_temp", {"older_than_hours": 0}, "older_than_hours"),
    ],
)
def test_invalid_arguments_are_refused(action: str, args: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidArguments, match=says.replace("(", r"\(")) as caught:
        validate_args(action, args)
    assert isinstance(caught.value, ValueError)
    assert action in str(caught.value)


def test_unknown_action() -> None:
    with pytest.raises(UnknownAction, match="unknown action 'shell'"):
        validate_args("shell", {"command": "id"})
