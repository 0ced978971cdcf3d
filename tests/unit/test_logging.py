"""Logs are JSON lines with the event being handled bound to them."""

import json

from ioccore.logging import bind_event, configure_logging, get_logger, unbind_event


def test_json_lines_carry_the_bound_event_id(capsys):
    configure_logging(level="INFO", json=True)
    log = get_logger("test")
    bind_event("evt-42", "vn.binhduong.land.permit.issued")
    log.info("event.handled", unit="25747")
    unbind_event()
    log.info("after")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert lines[0]["event"] == "event.handled"
    assert lines[0]["event_id"] == "evt-42"
    assert lines[0]["event_type"] == "vn.binhduong.land.permit.issued"
    assert lines[0]["unit"] == "25747"
    assert "event_id" not in lines[1]
