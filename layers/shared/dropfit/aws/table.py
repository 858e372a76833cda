"""The DynamoDB table of models and runs (see docs/design.md for the keys)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from dropfit.records import MODEL_DELETED, ModelRecord, Run, RunStatus, now_iso
from dropfit.upload_order import upload_order

MODEL_PK = "MODEL"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and "." not in str(value)
            else float(value)
        )
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _item(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in attributes.items()}


def _attributes(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def _run_key(model: str, job: str) -> dict[str, Any]:
    return _item({"pk": f"RUN#{model}", "sk": job})


def _model_key(model: str) -> dict[str, Any]:
    return _item({"pk": MODEL_PK, "sk": model})


def _conditional_failed(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


def _transaction_refused(error: ClientError) -> bool:
    """A condition failed, or a concurrent write to the same items won: nothing was written."""
    return error.response["Error"]["Code"] in (
        "TransactionCanceledException",
        "ConditionalCheckFailedException",
    )


def _set_expression(changes: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    names = {f"#f{i}": name for i, name in enumerate(changes)}
    values = _item({f":v{i}": value for i, value in enumerate(changes.values())})
    expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes)))
    return expression, names, values


class RunsTable:
    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def _update_if(
        self,
        key: dict[str, Any],
        expression: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        **extra: Any,
    ) -> dict[str, Any] | None:
        """One conditional UpdateItem: its response, or None if the condition failed (then
        nothing was written)."""
        try:
            response: dict[str, Any] = self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **extra,
            )
        except ClientError as error:
            if _conditional_failed(error):
                return None
            raise
        return response

    # --- runs --------------------------------------------------------------------------

    def claim_run(self, run: Run) -> bool:
        """Record a new run; False if this upload was already claimed and got past formatting.

        A run stuck in FORMATTING (its Lambda died, or an attempt failed and Lambda retries it)
        may be claimed again: everything after the claim is idempotent (same object names, same
        training job name). A claim keeps the count of failed attempts (``failed_attempts``).
        """
        run.updated_at = now_iso()
        expression, names, values = _set_expression(run.to_attributes())
        names["#status_now"] = "status"
        values.update(_item({":formatting": str(RunStatus.FORMATTING)}))
        condition = "attribute_not_exists(pk) OR #status_now = :formatting"
        key = _run_key(run.model, run.job)
        return self._update_if(key, expression, condition, names, values) is not None

    def count_failed_attempt(self, model: str, job: str) -> int:
        """One more failed attempt at this run; how many there have been in all."""
        response = self.client.update_item(
            TableName=self.table_name,
            Key=_run_key(model, job),
            UpdateExpression="ADD #failed :one",
            ExpressionAttributeNames={"#failed": "failed_attempts"},
            ExpressionAttributeValues=_item({":one": 1}),
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["failed_attempts"]["N"])

    def get_run(self, model: str, job: str) -> Run | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=_run_key(model, job), ConsistentRead=True
        ).get("Item")
        return Run.from_attributes(_attributes(item)) if item else None

    def update_run(
        self, model: str, job: str, *, only_from: set[RunStatus] | None = None, **changes: Any
    ) -> bool:
        """Set fields on a run; with ``only_from``, only if its status is one of those."""
        changes = {k: (str(v) if isinstance(v, RunStatus) else v) for k, v in changes.items()}
        changes["updated_at"] = now_iso()
        expression, names, values = _set_expression(changes)
        condition = "attribute_exists(pk)"
        if only_from:
            names["#current"] = "status"
            allowed = {f":s{i}": str(s) for i, s in enumerate(sorted(only_from))}
            values.update(_item(allowed))
            condition += f" AND #current IN ({', '.join(allowed)})"
        key = _run_key(model, job)
        return self._update_if(key, expression, condition, names, values) is not None

    # --- models ------------------------------------------------------------------------

    def get_model(self, model: str, consistent: bool = True) -> ModelRecord | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=_model_key(model), ConsistentRead=consistent
        ).get("Item")
        return ModelRecord.from_attributes(_attributes(item)) if item else None

    def claim_model(self, model: str, endpoint: str, source_key: str) -> str | None:
        """Make ``source_key`` the one key whose uploads train ``model``; the owner if another.

        One conditional write: the first upload of a name creates its record and owns it, later
        uploads of the same key pass, any other key is refused. A record older than ownership
        is first given to the key of its latest run (conditionally too, so racing claims agree).
        """
        for _ in range(2):
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=_model_key(model),
                    UpdateExpression=(
                        "SET #model = :model, #endpoint = :endpoint, #source = :key, "
                        "#created = if_not_exists(#created, :now)"
                    ),
                    ConditionExpression="attribute_not_exists(pk) OR #source = :key",
                    ExpressionAttributeNames={
                        "#model": "model",
                        "#endpoint": "endpoint",
                        "#source": "source_key",
                        "#created": "created_at",
                    },
                    ExpressionAttributeValues=_item(
                        {
                            ":model": model,
                            ":endpoint": endpoint,
                            ":key": source_key,
                            ":now": now_iso(),
                        }
                    ),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if not _conditional_failed(error):
                    raise
                item: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
                current = _attributes(item)
                if "source_key" in current:
                    return str(current["source_key"])
                self._adopt_legacy_model(model, current.get("latest_run"), source_key)
                continue
            return None
        raise RuntimeError(f"model {model}: its owner changed twice while being claimed")

    def _adopt_legacy_model(self, model: str, latest_run: str | None, claimant: str) -> None:
        """Give a record from before ownership to the key its latest run was uploaded as."""
        run = self.get_run(model, latest_run) if latest_run else None
        owner = run.source.get("key") if run is not None else None
        # Refused if a racing claim adopted it first: the next claim reads its owner.
        self._update_if(
            _model_key(model),
            "SET #source = :owner",
            "attribute_exists(pk) AND attribute_not_exists(#source)",
            {"#source": "source_key"},
            _item({":owner": owner or claimant}),
        )

    def note_refused_upload(self, model: str, key: str, reason: str) -> None:
        """Keep the last upload refused this model's name on its record, beside its runs."""
        self.client.update_item(
            TableName=self.table_name,
            Key=_model_key(model),
            UpdateExpression="SET #refused = :refused",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#refused": "refused_upload"},
            ExpressionAttributeValues=_item(
                {":refused": {"key": key, "reason": reason, "at": now_iso()}}
            ),
        )

    def record_upload(
        self, model: str, endpoint: str, job: str, order: str | None, *, created_at: str
    ) -> bool:
        """Point the model's ``latest_run`` at this upload unless a newer one is recorded.

        ``order`` is the upload's :func:`dropfit.upload_order.upload_order` (None: unordered,
        this upload counts as the newest). False (nothing written) if a newer upload of the key
        is already the latest, or if the model was deleted after this upload was claimed
        (``created_at``): that run must go no further. An upload claimed after the model's
        deletion recreates it.
        """
        changes: dict[str, Any] = {
            "model": model,
            "endpoint": endpoint,
            "latest_run": job,
            "updated_at": now_iso(),
        }
        if order is not None:
            changes["latest_order"] = order
        expression, names, values = _set_expression(changes)
        names |= {
            "#created": "created_at",
            "#order": "latest_order",
            "#latest": "latest_run",
            "#status": "status",
            "#deleted": "deleted_at",
        }
        values |= _item({":now": changes["updated_at"], ":run_created": created_at})
        condition = "attribute_not_exists(#order) OR #latest = :v2"
        if order is not None:
            # Equal sequencers are one event of one object version: the same upload.
            condition += " OR #order <= :v4"
        written = self._update_if(
            _model_key(model),
            f"{expression}, #created = if_not_exists(#created, :now) REMOVE #status",
            f"({condition}) AND (attribute_not_exists(#deleted) OR #deleted < :run_created)",
            names,
            values,
        )
        return written is not None

    def propose_desired_run(
        self, model: str, job: str, order: str | None, *, created_at: str
    ) -> bool:
        """Make ``job`` the run the endpoint should serve, unless a newer upload's already is.

        Newer is S3's order of the uploads (``order``, see :mod:`dropfit.upload_order`), never
        the order in which their runs happened to finish. Never a run created before the
        model's last deletion (``created_at``): it is not to be deployed.
        """
        changes: dict[str, Any] = {"desired_run": job, "updated_at": now_iso()}
        if order is not None:
            changes["desired_order"] = order
        expression, names, values = _set_expression(changes)
        names |= {"#order": "desired_order", "#desired": "desired_run", "#deleted": "deleted_at"}
        values |= _item({":run_created": created_at})
        condition = "attribute_not_exists(#order) OR #desired = :v0"
        if order is not None:
            condition += " OR #order <= :v2"
        written = self._update_if(
            _model_key(model),
            expression,
            f"attribute_exists(pk) AND ({condition}) "
            "AND (attribute_not_exists(#deleted) OR #deleted < :run_created)",
            names,
            values,
        )
        return written is not None

    def update_model(self, model: str, **changes: Any) -> bool:
        """Set fields on a model; False if it does not exist or was deleted meanwhile."""
        changes["updated_at"] = now_iso()
        expression, names, values = _set_expression(changes)
        names["#lifecycle"] = "status"
        values.update(_item({":deleted": MODEL_DELETED}))
        written = self._update_if(
            _model_key(model),
            expression,
            "attribute_exists(pk) AND (attribute_not_exists(#lifecycle) OR #lifecycle <> :deleted)",
            names,
            values,
        )
        return written is not None

    def mark_deleted(self, model: str) -> ModelRecord | None:
        """Status DELETED: the model serves nothing and runs created until now never deploy.

        Returns the record as it was before (None if there is no such model).
        """
        response = self._update_if(
            _model_key(model),
            "SET #status = :deleted, #deleted_at = :now, #updated = :now "
            "REMOVE #desired, #desired_order, #deploying, #deployed",
            "attribute_exists(pk)",
            {
                "#status": "status",
                "#deleted_at": "deleted_at",
                "#updated": "updated_at",
                "#desired": "desired_run",
                "#desired_order": "desired_order",
                "#deploying": "deploying_run",
                "#deployed": "deployed_run",
            },
            _item({":deleted": MODEL_DELETED, ":now": now_iso()}),
            ReturnValues="ALL_OLD",
        )
        if response is None:
            return None
        return ModelRecord.from_attributes(_attributes(response["Attributes"]))

    def claim_rollback(self, record: ModelRecord, target: Run) -> bool:
        """Make ``target`` the run to serve, if the model is as ``record`` read it and the
        target's endpoint config was not pruned meanwhile (one transaction, see claim_prune)."""
        order = upload_order(target.source.get("sequencer"))
        values = {":job": target.job, ":now": now_iso(), ":seen": record.updated_at}
        expression = "SET #desired = :job, #updated = :now"
        if order is None:
            expression += " REMOVE #order"
        else:
            expression += ", #order = :order"
            values[":order"] = order
        model_update = {
            "TableName": self.table_name,
            "Key": _model_key(record.model),
            "UpdateExpression": expression,
            "ConditionExpression": "#updated = :seen",
            "ExpressionAttributeNames": {
                "#desired": "desired_run",
                "#order": "desired_order",
                "#updated": "updated_at",
            },
            "ExpressionAttributeValues": _item(values),
        }
        run_check = {
            "TableName": self.table_name,
            "Key": _run_key(target.model, target.job),
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#pruned)",
            "ExpressionAttributeNames": {"#pruned": "pruned_at"},
        }
        return self._transact([{"Update": model_update}, {"ConditionCheck": run_check}])

    def claim_prune(self, model: str, job: str) -> bool:
        """Mark ``job`` pruned, unless the model names it (to serve, deploying or desired) or it
        was pruned already. In one transaction with the model's record, so that a rollback and a
        prune of the same run never both succeed."""
        names = {
            "#desired": "desired_run",
            "#deploying": "deploying_run",
            "#deployed": "deployed_run",
        }
        model_check = {
            "TableName": self.table_name,
            "Key": _model_key(model),
            "ConditionExpression": " AND ".join(
                f"(attribute_not_exists({n}) OR {n} <> :job)" for n in names
            ),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _item({":job": job}),
        }
        run_update = {
            "TableName": self.table_name,
            "Key": _run_key(model, job),
            "UpdateExpression": "SET #pruned = :now, #updated = :now",
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#pruned)",
            "ExpressionAttributeNames": {"#pruned": "pruned_at", "#updated": "updated_at"},
            "ExpressionAttributeValues": _item({":now": now_iso()}),
        }
        return self._transact([{"ConditionCheck": model_check}, {"Update": run_update}])

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if _transaction_refused(error):
                return False
            raise
        return True

    def list_runs(self, model: str) -> list[Run]:
        """Every run of the model, oldest first."""
        runs: list[Run] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": _item({":pk": f"RUN#{model}"}),
            "ConsistentRead": True,
        }
        while True:
            response = self.client.query(**kwargs)
            runs += [Run.from_attributes(_attributes(i)) for i in response["Items"]]
            if "LastEvaluatedKey" not in response:
                return sorted(runs, key=lambda run: run.created_at)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def list_models(self) -> list[ModelRecord]:
        models: list[ModelRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": _item({":pk": MODEL_PK}),
        }
        while True:
            response = self.client.query(**kwargs)
            models += [ModelRecord.from_attributes(_attributes(i)) for i in response["Items"]]
            if "LastEvaluatedKey" not in response:
                return models
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
