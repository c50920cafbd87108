"""The one JSON log line format the trainer and the API share."""

from __future__ import annotations

import json
import logging
import sys

from sentiment_core.json_logs import JsonLineFormatter


def test_one_object_per_line_with_extra_fields() -> None:
    record = logging.LogRecord("sentiment_inference.poller", logging.INFO, __file__, 1, "now serving %s", ("7",), None)
    record.event = "model_swapped"
    record.flow_run_name = "brave-otter"
    line = JsonLineFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "now serving 7"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "sentiment_inference.poller"
    assert entry["time"].endswith("+00:00")
    assert entry["event"] == "model_swapped"
    assert entry["flow_run_name"] == "brave-otter"
    assert "\n" not in line


def test_an_exception_and_a_multiline_message_stay_on_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed:\n%s", ("two lines",), sys.exc_info())
    record.payload = {"not": "json-native"}
    line = JsonLineFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert "ValueError: bad" in entry["exception"]
    assert entry["payload"] == "{'not': 'json-native'}"
