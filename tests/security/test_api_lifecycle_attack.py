"""The lifecycle routes (delete, rollback, runs) under generated requests, in process.

Apart from test_api_attack.py because they change the seeded models: each generation mode gets a
world of its own. Whatever comes in, every answer is documented and keeps its JSON shape.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.security.api import PredictApi
from tests.security.test_api_attack import (
    FUZZ_EXAMPLES,
    LIFECYCLE_OPERATIONS,
    SCHEMA,
    generated_cases,
    judge,
)
from tests.security.world import world

LIFECYCLE = SCHEMA.include(operation_id=LIFECYCLE_OPERATIONS)
EXPECTED = {GenerationMode.POSITIVE: {200, 404}, GenerationMode.NEGATIVE: {400}}


def _stop_training_answered(api: PredictApi) -> None:
    """moto has no StopTrainingJob (deleting the seeded model that trains calls it)."""
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        return AWSResponse("https://sagemaker.local/", 200, HTTPHeaders(), None), {
            "ResponseMetadata": {"HTTPStatusCode": 200}
        }

    client = api.world.client("manage", "sagemaker")
    client.meta.events.register("before-call.sagemaker.StopTrainingJob", answer)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_lifecycle_requests_get_documented_answers(mode: GenerationMode) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch, world(monkeypatch) as w:
        api = PredictApi(w)
        _stop_training_answered(api)

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=generated_cases(
                mode,
                schema=LIFECYCLE,
                operations=[
                    ("/models/{model}", "DELETE"),
                    ("/models/{model}/rollback", "POST"),
                    ("/models/{model}/runs", "GET"),
                ],
            )
        )
        def fuzz(case: schemathesis.Case) -> None:
            judge(case, case.call(app=api.wsgi))

        fuzz()

    print(f"\n{mode.value}: lifecycle statuses {sorted(api.statuses.items())}")
    assert api.statuses.total() >= FUZZ_EXAMPLES
    # Valid requests deleted models and met some gone; invalid ones were refused.
    assert EXPECTED[mode] <= set(api.statuses)
