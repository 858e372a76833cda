"""Which upload of a key is newer: S3's event ``sequencer``, never when a function happened to run.

S3 documents the sequencer of an object's events as a hexadecimal string that grows with each
PUT or DELETE of that key; strings of different lengths are compared after left-padding the
shorter with zeros ("Event message structure", Amazon S3 User Guide). Events arrive out of order
and are retried, so a retried event of an older upload can be formatted after a newer one: only
the sequencer says which upload is newer. It orders the uploads of one key, never of two keys
(a model name belongs to one key).

:func:`upload_order` makes it a string that DynamoDB's condition expressions compare correctly
(byte order): the hexadecimal digits without leading zeros, in upper case, after their count.
"""

from __future__ import annotations

import re

_HEX = re.compile(r"[0-9A-Fa-f]+")


def upload_order(sequencer: str | None) -> str | None:
    """The sequencer as a sortable string (None when the event has none or it is not hex)."""
    if sequencer is None or not _HEX.fullmatch(sequencer):
        return None
    digits = sequencer.upper().lstrip("0") or "0"
    return f"{len(digits):04d}:{digits}"
