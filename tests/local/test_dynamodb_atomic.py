"""The local stack's DynamoDB never shows a half-written item (moto's UpdateItem would)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.parsing import executors

from dropfit_local import dynamodb_atomic

TABLE = "runs"
KEY = {"pk": {"S": "MODEL"}, "sk": {"S": "iris"}}


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _read_during_first_update(client: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """GetItem from another thread while UpdateItem is creating the item; what did it see?"""
    updating, release = threading.Event(), threading.Event()
    execute = executors.UpdateExpressionExecutor.execute

    def paused_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        updating.set()  # moto has stored the bare key by now
        release.wait(5)
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(executors.UpdateExpressionExecutor, "execute", paused_execute)
    writer = threading.Thread(
        target=client.update_item,
        kwargs={
            "TableName": TABLE,
            "Key": KEY,
            "UpdateExpression": "SET #m = :m, #e = :e",
            "ExpressionAttributeNames": {"#m": "model", "#e": "endpoint"},
            "ExpressionAttributeValues": {":m": {"S": "iris"}, ":e": {"S": "dropfit-iris"}},
        },
    )
    writer.start()
    assert updating.wait(5)
    seen: dict[str, Any] = {}
    reader = threading.Thread(
        target=lambda: seen.update(client.get_item(TableName=TABLE, Key=KEY).get("Item", {}))
    )
    reader.start()
    reader.join(0.5)  # a read that is not held back answers at once
    release.set()
    writer.join(5)
    reader.join(5)
    return seen


def test_a_read_never_sees_an_item_while_it_is_being_created(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb_atomic.install()

    seen = _read_during_first_update(dynamodb, monkeypatch)

    assert seen == {**KEY, "model": {"S": "iris"}, "endpoint": {"S": "dropfit-iris"}}


def test_install_is_idempotent() -> None:
    dynamodb_atomic.install()
    dynamodb_atomic.install()
    from moto.dynamodb.models import DynamoDBBackend

    wrapped = DynamoDBBackend.update_item
    assert getattr(wrapped, "dropfit_atomic", False)
    assert not getattr(wrapped.__wrapped__, "dropfit_atomic", False)  # type: ignore[attr-defined]
