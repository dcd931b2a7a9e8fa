"""smartctl JSON parsed from recorded outputs: an ATA SSD, an NVMe drive and a failing disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.facts.cache import TtlCache
from agent.facts.command import CommandOutput
from agent.facts.hardware import smart
from agent.facts.hardware.models import (
    SMART_BIT_DISK_FAILING,
    SMART_BIT_ERROR_LOG,
    SMART_BIT_PREFAIL_NOW,
    SMART_BIT_SELF_TEST_ERRORS,
    SmartDrive,
    SmartFacts,
)
from agent.facts.models import Unavailable

FIXTURES = Path(__file__).parents[3] / "fixtures" / "hardware" / "smartctl"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def drive(name: str) -> SmartDrive:
    parsed = smart.parse_device(fixture(name))
    assert isinstance(parsed, SmartDrive), parsed
    return parsed


def test_scan_lists_drives_with_their_type_and_open_errors() -> None:
    devices = smart.parse_scan(fixture("scan_open.json"))
    assert devices == [
        smart.ScannedDevice("/dev/sda", "sat"),
        smart.ScannedDevice("/dev/sdb", "scsi", "Unknown USB bridge [0x152d:0x0578 (0x508)]"),
        smart.ScannedDevice("/dev/nvme0", "nvme"),
    ]


def test_a_healthy_ata_ssd() -> None:
    ssd = drive("ata_ssd.json")
    assert (ssd.device, ssd.protocol) == ("/dev/sda", "ATA")
    assert ssd.model == "Samsung SSD 860 EVO 500GB"
    assert ssd.serial == "S3Z1NB0K812345X"
    assert ssd.capacity_bytes == 500107862016
    assert ssd.health_passed is True
    assert ssd.exit_status == 0
    assert ssd.temperature_celsius == 31.0
    assert ssd.power_on_hours == 21873
    assert ssd.reallocated_sectors == 0
    # The 860 EVO has no pending-sector attribute; 187 is its uncorrectable count.
    assert ssd.pending_sectors is None
    assert ssd.uncorrectable_errors == 0
    assert ssd.nvme_percentage_used is None
    assert len(ssd.attributes) == 14
    assert ssd.failing_attributes == () and ssd.failed_attributes_in_past == ()


def test_a_healthy_nvme_drive() -> None:
    nvme = drive("nvme.json")
    assert (nvme.device, nvme.protocol) == ("/dev/nvme0", "NVMe")
    assert nvme.model == "Samsung SSD 970 EVO Plus 1TB"
    assert nvme.health_passed is True
    assert nvme.nvme_critical_warning == 0
    assert nvme.nvme_percentage_used == 3
    assert nvme.nvme_media_errors == 0
    assert (nvme.nvme_available_spare, nvme.nvme_available_spare_threshold) == (100, 10)
    assert nvme.power_on_hours == 4321
    assert nvme.temperature_celsius == 38.0
    assert nvme.attributes == ()
    assert nvme.reallocated_sectors is None


def test_a_failing_disk() -> None:
    hdd = drive("failing_hdd.json")
    assert hdd.health_passed is False
    for bit in (
        SMART_BIT_DISK_FAILING,
        SMART_BIT_PREFAIL_NOW,
        SMART_BIT_ERROR_LOG,
        SMART_BIT_SELF_TEST_ERRORS,
    ):
        assert hdd.exit_status & bit
    assert hdd.reallocated_sectors == 3928
    assert hdd.pending_sectors == 48
    assert hdd.uncorrectable_errors == 48 + 412
    assert [a.name for a in hdd.failing_attributes] == ["Reallocated_Sector_Ct"]
    assert [a.name for a in hdd.failed_attributes_in_past] == ["Airflow_Temperature_Cel"]
    # Packed raw values are read from smartctl's rendering, not the 48-bit number.
    by_id = {a.id: a for a in hdd.attributes}
    assert by_id[194].raw == 40
    assert by_id[188].raw == 2


def test_the_process_exit_code_wins_over_the_json_one() -> None:
    parsed = smart.parse_device(fixture("ata_ssd.json"), exit_status=64)
    assert isinstance(parsed, SmartDrive)
    assert parsed.exit_status == 64


def test_a_drive_that_could_not_be_opened_gives_the_reason() -> None:
    assert smart.parse_device(fixture("open_failed.json"), 2, "/dev/sda") == (
        "/dev/sda: Smartctl open device: /dev/sda [SAT] failed: Permission denied"
    )


def test_a_drive_without_smart_data_gives_a_reason() -> None:
    text = '{"smartctl": {"exit_status": 4}, "device": {"name": "/dev/sdc"}}'
    assert smart.parse_device(text) == "/dev/sdc: the drive reports no SMART data"


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]"])
def test_output_that_is_not_smartctl_json_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        smart.parse_device(text)
    with pytest.raises(ValueError):
        smart.parse_scan(text)


class RecordedSmartctl:
    """Answers smartctl command lines from the recorded fixtures, and notes each call."""

    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> CommandOutput | Unavailable:
        self.calls.append(argv)
        key = "scan" if "--scan-open" in argv else argv[-1]
        if key not in self.answers:
            return Unavailable(f"smartctl did not answer for {key}")
        code, name = self.answers[key]
        return CommandOutput(code, fixture(name), "")


def test_scan_and_read_reads_each_openable_drive() -> None:
    run = RecordedSmartctl(
        {
            "scan": (0, "scan_open.json"),
            "/dev/sda": (0, "ata_ssd.json"),
            "/dev/nvme0": (0, "nvme.json"),
        }
    )
    facts = smart.scan_and_read("smartctl", run)
    assert isinstance(facts, SmartFacts)
    assert [d.device for d in facts.drives] == ["/dev/sda", "/dev/nvme0"]
    assert facts.errors == ("/dev/sdb: Unknown USB bridge [0x152d:0x0578 (0x508)]",)
    assert run.calls[1] == ["smartctl", "--json", "-a", "-d", "sat", "/dev/sda"]
    assert len(run.calls) == 3  # the USB drive that could not be opened is not asked


def test_a_nonzero_exit_with_disk_state_bits_is_an_answer() -> None:
    run = RecordedSmartctl({"scan": (0, "scan_open.json"), "/dev/sda": (248, "failing_hdd.json")})
    facts = smart.scan_and_read("smartctl", run)
    assert isinstance(facts, SmartFacts)
    (hdd,) = facts.drives
    assert hdd.health_passed is False and hdd.exit_status == 248
    assert "/dev/nvme0: smartctl did not answer for /dev/nvme0" in facts.errors


def test_without_administrator_rights_every_drive_says_why() -> None:
    run = RecordedSmartctl({"scan": (0, "scan_open_not_root.json")})
    facts = smart.scan_and_read("smartctl", run)
    assert isinstance(facts, SmartFacts)
    assert facts.drives == ()
    assert facts.errors == (
        "/dev/sda: Permission denied (reading SMART needs administrator rights)",
        "/dev/nvme0: Permission denied (reading SMART needs administrator rights)",
    )


def test_open_failure_reported_by_the_drive_read_needs_rights_too() -> None:
    run = RecordedSmartctl({"scan": (0, "scan_open.json"), "/dev/sda": (2, "open_failed.json")})
    facts = smart.scan_and_read("smartctl", run)
    assert isinstance(facts, SmartFacts)
    assert facts.errors[0].startswith("/dev/sda: Smartctl open device")
    assert facts.errors[0].endswith("(reading SMART needs administrator rights)")


def test_a_failed_scan_is_unavailable() -> None:
    facts = smart.scan_and_read("smartctl", RecordedSmartctl({}))
    assert facts == Unavailable("smartctl did not answer for scan")


def test_no_drive_found_is_unavailable() -> None:
    empty = RecordedSmartctl({"scan": (0, "open_failed.json")})  # valid JSON, no devices
    facts = smart.scan_and_read("smartctl", empty)
    assert isinstance(facts, Unavailable)
    assert facts.reason.startswith("smartctl found no drive")


def test_on_this_machine_smart_is_read_or_unavailable_with_a_reason() -> None:
    facts = smart.read_smart()
    if isinstance(facts, Unavailable):
        assert facts.reason
    else:
        assert facts.drives or facts.errors


def test_the_cache_reads_once_per_time_to_live() -> None:
    now = [0.0]
    reads: list[float] = []

    def read() -> SmartFacts | Unavailable:
        reads.append(now[0])
        return Unavailable(f"read {len(reads)}")

    cache = TtlCache(read, ttl_s=600, clock=lambda: now[0])
    assert cache.get() == Unavailable("read 1")
    now[0] = 599.0
    assert cache.get() == Unavailable("read 1")
    now[0] = 600.0
    assert cache.get() == Unavailable("read 2")
    assert reads == [0.0, 600.0]
