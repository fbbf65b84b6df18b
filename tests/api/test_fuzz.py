"""Property-based fuzzing over our OpenAPI schema (schemathesis): no 5xx, errors in the envelope."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.corpus import COMPLETIONS

AUTH = {"Authorization": "Bearer sk-fuzz"}


def _check(case) -> None:
    for headers in (AUTH, {}):
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.path, case.body, response.text)
        if response.status_code >= 400 and case.path.startswith("/v1/messages"):
            body = response.json()  # Anthropic's envelope on Anthropic's routes
            assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        elif response.status_code >= 400:
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert isinstance(error["code"], str)


def test_fuzz_every_operation(serve):
    server = serve(list(COMPLETIONS.values()), api_key=["sk-fuzz"])
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json", headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/v1/chat/completions", "/tokenize", "/v1/models", "/v1/responses",
        "/v1/responses/{response_id}", "/v1/responses/{response_id}/input_items",
        "/v1/completions", "/v1/messages", "/v1/messages/count_tokens"}
    for operation in operations:
        run = settings(max_examples=80, deadline=None, database=None,
                       suppress_health_check=list(HealthCheck))(
            given(case=operation.as_strategy())(_check))
        run()
