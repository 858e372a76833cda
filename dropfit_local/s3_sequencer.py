"""S3's event ``sequencer`` on the local stack: growing with each upload, as S3's does per key.

moto gives every S3 event the same constant sequencer; S3's grows with each PUT or DELETE of a
key, and the format function orders a key's uploads by it (``dropfit.upload_order``). This gives
each S3 event moto sends to EventBridge the next value of one counter for the whole stack (so it
grows per key too), the same for every rule the event matches. moto builds and routes the event
in the thread of the request that caused it, so the value travels in a thread-local.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from moto.events.models import Rule
from moto.s3 import notifications

_counter = itertools.count(1)
_lock = threading.Lock()
_current = threading.local()


def next_sequencer() -> str:
    with _lock:
        value = next(_counter)
    return f"{value:016X}"


def install() -> None:
    """Patch moto (this process) once; harmless to call again."""
    if getattr(notifications._send_event_bridge_message, "dropfit_sequencer", False):
        return
    send_event = notifications._send_event_bridge_message
    send_to_targets = Rule.send_to_targets

    def send_with_sequencer(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        _current.value = next_sequencer()
        try:
            send_event(account_id, bucket, event_name, key)
        finally:
            _current.value = None

    def route(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        sequencer = getattr(_current, "value", None)
        if sequencer is not None and original_event.get("source") == "aws.s3":
            original_event["detail"]["object"]["sequencer"] = sequencer
        send_to_targets(self, original_event, transform_input)

    send_with_sequencer.dropfit_sequencer = True  # type: ignore[attr-defined]
    notifications._send_event_bridge_message = send_with_sequencer
    Rule.send_to_targets = route  # type: ignore[method-assign]
