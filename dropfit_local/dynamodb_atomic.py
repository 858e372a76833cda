"""DynamoDB's item operations on the local stack are atomic, as DynamoDB's are.

moto's UpdateItem on a missing item first stores the bare key, then applies the SET clauses to
that stored item one by one; a GetItem or Query from another thread in between (the local
stack's moto server answers each request in a thread of its own) sees an item with only its
keys, which DynamoDB never shows: a model record without ``model`` or ``endpoint`` then made
``GET /models/{model}`` answer 500 while its first upload was being recorded. One lock around
moto's item operations makes every read see an item before or after a write, never during one.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

# Every operation that reads or writes items (moto serves BatchGet/BatchWrite/TransactGet
# through these too).
ITEM_OPERATIONS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
)
_lock = threading.RLock()


def _atomic(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return operation(*args, **kwargs)

    locked.dropfit_atomic = True  # type: ignore[attr-defined]
    return locked


def install() -> None:
    """Patch moto (this process) once; harmless to call again."""
    for name in ITEM_OPERATIONS:
        operation = getattr(DynamoDBBackend, name)
        if not getattr(operation, "dropfit_atomic", False):
            setattr(DynamoDBBackend, name, _atomic(operation))
