"""Stored responses over HTTP with the openai SDK, for the in-memory store and for Redis.

Isolation per API key (another key's retrieve / delete / input_items / previous_response_id see
the same 4xx as for an id never stored), ``store: false``, deleted ids and TTL run against both
stores on the in-process server. Then two real server processes share one redis-server (any
replica reads and continues any stored response), and Redis stops under a running server: what
needs the store is a quick 503 envelope, everything else still works.
"""

from __future__ import annotations

import contextlib
import signal
import time

import openai
import pytest

from server.store import MemoryStore
from server.store_redis import RedisStore
from tests.conftest import MODEL, wait_for
from tests.corpus import COMPLETIONS
from tests.server_process import ServerProcess, start_server

KEY_A, KEY_B = "sk-store-test-a", "sk-store-test-b"
DEMO_SCRIPT = "examples/scripted-demo.jsonl"


@pytest.fixture(params=["memory", "redis"])
def store_url(request) -> str:
    return "memory" if request.param == "memory" else request.getfixturevalue("redis_url")


def sdk(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30)


def assert_not_found(client: openai.OpenAI, response_id: str) -> None:
    """Retrieve, delete, input_items: 404; a continuation: a 400 naming previous_response_id."""
    for call in (client.responses.retrieve, client.responses.delete,
                 client.responses.input_items.list):
        with pytest.raises(openai.NotFoundError) as caught:
            call(response_id)
        assert caught.value.body["message"] == f"no response with id '{response_id}' found"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="and then?", previous_response_id=response_id)
    assert caught.value.body["param"] == "previous_response_id"
    assert caught.value.body["code"] == "previous_response_not_found"


def test_a_stored_response_belongs_to_the_key_that_created_it(serve, store_url):
    server = serve([COMPLETIONS["plain"]], api_key=[KEY_A, KEY_B], response_store=store_url)
    assert isinstance(server.app.state.store, MemoryStore if store_url == "memory" else RedisStore)
    a, b = sdk(server.url, KEY_A), sdk(server.url, KEY_B)
    created = a.responses.create(model=MODEL, input="hi")
    assert created.status == "completed" and created.output_text == "Hello! How can I help?"
    # key B sees exactly what it sees for an id that was never stored
    assert_not_found(b, created.id)
    assert_not_found(b, "resp_" + "0" * 32)
    # and none of that touched A's response
    assert a.responses.retrieve(created.id).model_dump() == created.model_dump()
    items = a.responses.input_items.list(created.id)
    assert [item.type for item in items.data] == ["message"]
    follow_up = a.responses.create(model=MODEL, input="and then?", previous_response_id=created.id)
    assert follow_up.status == "completed"
    # the continuation was rendered over the stored conversation
    assert follow_up.usage.input_tokens > created.usage.input_tokens
    # B's own responses are B's
    own = b.responses.create(model=MODEL, input="hi")
    assert b.responses.retrieve(own.id).id == own.id
    assert_not_found(a, own.id)


def test_store_false_leaves_nothing(serve, store_url):
    server = serve([COMPLETIONS["plain"]], api_key=[KEY_A], response_store=store_url)
    a = server.client()
    unstored = a.responses.create(model=MODEL, input="hi", store=False)
    assert unstored.status == "completed" and unstored.store is False
    assert_not_found(a, unstored.id)
    with a.responses.stream(model=MODEL, input="hi", store=False) as stream:
        streamed = stream.get_final_response()
    assert_not_found(a, streamed.id)


def test_deleted_responses_are_gone(serve, store_url):
    server = serve([COMPLETIONS["plain"]], api_key=[KEY_A], response_store=store_url)
    a = server.client()
    created = a.responses.create(model=MODEL, input="hi")
    kept = a.responses.create(model=MODEL, input="hi")
    deleted = a.responses.delete(created.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    assert_not_found(a, created.id)
    assert a.responses.retrieve(kept.id).id == kept.id


def test_without_keys_there_is_one_shared_space(serve, store_url):
    server = serve([COMPLETIONS["plain"]], response_store=store_url)
    created = sdk(server.url, "anything").responses.create(model=MODEL, input="hi")
    assert sdk(server.url, "something-else").responses.retrieve(created.id).id == created.id


def test_stored_responses_expire_after_the_ttl(serve, store_url):
    server = serve([COMPLETIONS["plain"]], api_key=[KEY_A], response_store=store_url,
                   response_store_ttl=1.0)
    a = server.client()
    created = a.responses.create(model=MODEL, input="hi")
    http = server.http()

    def expired() -> bool:
        return http.get(f"/v1/responses/{created.id}").status_code == 404

    wait_for(expired, timeout=15, what="the stored response to expire")
    assert_not_found(a, created.id)


# -- two server processes, one redis-server -------------------------------------------------------

@pytest.fixture
def replicas(redis_url, tmp_path):
    started: list[ServerProcess] = []
    try:
        for _ in range(2):
            started.append(start_server(
                ["--engine", "scripted", "--script", DEMO_SCRIPT, "--served-model-name", MODEL,
                 "--response-store", redis_url, "--api-key", KEY_A, "--api-key", KEY_B],
                tmp_path, model=MODEL, ready_timeout=60))
        yield started
    finally:
        for server in started:
            server.stop()


@contextlib.contextmanager
def logs_on_failure(servers: list[ServerProcess]):
    try:
        yield
    except AssertionError as failure:  # say what the servers logged
        logs = "\n".join(f"--- server on port {s.port} ---\n{s.log()[-6000:]}" for s in servers)
        raise AssertionError(f"{failure}\n{logs}") from failure


def test_two_replicas_share_stored_responses(replicas):
    with logs_on_failure(replicas):
        check_two_replicas(*replicas)


def check_two_replicas(one: ServerProcess, two: ServerProcess) -> None:
    a1, a2 = sdk(one.base_url, KEY_A), sdk(two.base_url, KEY_A)
    created = a1.responses.create(model=MODEL, input="Hello there")
    assert created.status == "completed"
    # the other replica reads it ...
    assert a2.responses.retrieve(created.id).model_dump() == created.model_dump()
    assert [item.id for item in a2.responses.input_items.list(created.id).data] == \
        [item.id for item in a1.responses.input_items.list(created.id).data]
    # ... and continues it over the stored conversation; the first replica reads that in turn
    follow_up = a2.responses.create(model=MODEL, input="And the weather?",
                                    previous_response_id=created.id)
    assert follow_up.status == "completed"
    assert follow_up.usage.input_tokens > created.usage.input_tokens
    assert a1.responses.retrieve(follow_up.id).id == follow_up.id
    # another key gets the 404 (and the 400 for a continuation) on either replica
    for server in (one, two):
        b = sdk(server.base_url, KEY_B)
        assert_not_found(b, created.id)
        assert_not_found(b, follow_up.id)
    # a delete on one replica is a delete on both
    a2.responses.delete(created.id)
    assert_not_found(a1, created.id)


# -- Redis goes away under a running server ---------------------------------------------------------

QUICK = 3.0  # seconds: the store's socket timeout is 2 s; a refused connection is immediate


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_redis_outage_is_a_quick_503_for_what_needs_the_store(serve, start_redis):
    redis_server = start_redis()
    server = serve([COMPLETIONS["plain"]], api_key=[KEY_A], response_store=redis_server.url)
    a = server.client()
    http = server.http()
    created = a.responses.create(model=MODEL, input="hi")
    redis_server.stop()

    needs_store = [
        ("GET", f"/v1/responses/{created.id}", None),
        ("DELETE", f"/v1/responses/{created.id}", None),
        ("GET", f"/v1/responses/{created.id}/input_items", None),
        ("POST", "/v1/responses", {"model": MODEL, "input": "and then?",
                                   "previous_response_id": created.id}),
    ]
    for method, path, body in needs_store:
        response, seconds = timed(lambda: http.request(method, path, json=body))  # noqa: B023
        assert response.status_code == 503, (method, path, response.text)
        error = response.json()["error"]
        assert error["type"] and error["code"] == "server_unavailable"
        assert "response store" in error["message"]
        assert response.headers.get("retry-after") == "1"
        assert seconds < QUICK, (method, path, seconds)

    # everything else keeps working
    chat, seconds = timed(lambda: a.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]))
    assert chat.choices[0].message.content == "Hello! How can I help?" and seconds < QUICK
    unstored, seconds = timed(lambda: a.responses.create(model=MODEL, input="hi", store=False))
    assert unstored.status == "completed" and seconds < QUICK
    # a stored create still answers; it just is not stored
    stored, seconds = timed(lambda: a.responses.create(model=MODEL, input="hi"))
    assert stored.status == "completed" and seconds < QUICK
    with a.responses.stream(model=MODEL, input="hi") as stream:
        assert stream.get_final_response().status == "completed"
    assert http.get("/ready").status_code == 200

    # Redis back (empty: no persistence): the store works again without a restart
    redis_server.start()
    again = a.responses.create(model=MODEL, input="hi")
    assert wait_for(lambda: http.get(f"/v1/responses/{again.id}").status_code == 200,
                    timeout=10, what="the store to answer again")
    with pytest.raises(openai.NotFoundError):
        a.responses.retrieve(stored.id)  # created during the outage: never stored


def test_redis_unreachable_from_the_start_still_serves(serve, start_redis):
    """A server whose Redis is down when it starts: ready, and the same 503s."""
    redis_server = start_redis()
    redis_server.stop()
    server = serve([COMPLETIONS["plain"]], api_key=[KEY_A], response_store=redis_server.url)
    a = server.client()
    created, seconds = timed(lambda: a.responses.create(model=MODEL, input="hi"))
    assert created.status == "completed" and seconds < QUICK
    response = server.http().get(f"/v1/responses/{created.id}")
    assert response.status_code == 503 and response.json()["error"]["code"] == "server_unavailable"


def test_a_hung_redis_is_a_503_within_the_socket_timeout(serve, start_redis):
    """Redis accepts connections but never answers (the process is stopped, as a hung or
    partitioned Redis looks): the 2 s socket timeout bounds every wait on it."""
    redis_server = start_redis()
    server = serve([COMPLETIONS["plain"]], api_key=[KEY_A], response_store=redis_server.url)
    a, http = server.client(), server.http()
    created = a.responses.create(model=MODEL, input="hi")
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        response, seconds = timed(lambda: http.get(f"/v1/responses/{created.id}"))
        assert response.status_code == 503 and seconds < 2.0 + QUICK
        chat, seconds = timed(lambda: a.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]))
        assert chat.choices[0].finish_reason == "stop" and seconds < QUICK
        stored, seconds = timed(lambda: a.responses.create(model=MODEL, input="hi"))
        assert stored.status == "completed" and seconds < 2.0 + QUICK
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    assert wait_for(lambda: http.get(f"/v1/responses/{created.id}").status_code == 200,
                    timeout=10, what="the store to answer again")
