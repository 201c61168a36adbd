"""Whatever a caller passes to `enqueue`, against a real Redis: a job id or a QueueError, and keys
only under `rq:` / `taskq:`. Never a raw rq, redis or Python error; never a key elsewhere."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.infrastructure.queue import keys
from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.port import JobRequest, RetryPolicy
from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.redis_env import all_keys

pytestmark = pytest.mark.integration

EXAMPLES = 200
COUNTS: dict[str, int] = {}


def mostly(valid: st.SearchStrategy, *hostile: st.SearchStrategy) -> st.SearchStrategy:
    """`valid` three times in four, else one of `hostile` (a plain `one_of` flattens nested
    `one_of`s and would weight every hostile branch like the valid one)."""
    return st.integers(0, 3).flatmap(lambda pick: st.one_of(*hostile) if pick == 0 else valid)


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.sets(st.integers(), max_size=3),
    st.builds(object),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
valid_names = st.sampled_from(
    ["add", "echo", "tests.support.jobs.echo", "app.worker.jobs.ingest_doc.ingest_doc"]
)
job_names = mostly(
    valid_names,
    st.sampled_from(["os.system", "builtins.eval", "echo\n", "ECHO", "", "tests.support.jobs"]),
    st.text(max_size=60),
    anything,
)
valid_params = st.dictionaries(st.text(max_size=20), json_values, max_size=5)
params = mostly(
    valid_params,
    st.dictionaries(
        st.one_of(st.text(max_size=5), st.integers(), st.binary(max_size=5)), anything, max_size=3
    ),
    st.just({"big": "x" * (600 * 1024)}),
    anything,
)
valid_ids = st.from_regex(r"[A-Za-z0-9_-]{1,128}", fullmatch=True)
ids = mostly(
    st.one_of(st.none(), valid_ids, st.sampled_from(["a1", "a2", "a3"])),  # recurring ids: reuse, depend
    st.sampled_from(["abc\n", "a:b", "../x", "*", "rq:job:x", "x" * 129, "é"]),
    st.text(max_size=140),
    anything,
)
valid_seconds = st.one_of(
    st.integers(min_value=1, max_value=3600), st.timedeltas(timedelta(0), timedelta(hours=1))
)
seconds = mostly(
    st.one_of(st.none(), valid_seconds),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(),
    st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=400)),
    anything,
)
moments = mostly(
    st.one_of(st.none(), st.just(datetime.now(timezone.utc) + timedelta(seconds=30))),
    st.datetimes(timezones=st.just(timezone.utc)),
    st.datetimes(),
    st.just(datetime.now(timezone.utc) + timedelta(seconds=30)),
    anything,
)
retries = mostly(
    st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
    st.integers(min_value=-3, max_value=10**6),
    st.builds(RetryPolicy, st.integers(-1, 50), st.floats(), st.floats(), st.floats(), st.floats()),
    anything,
)
options = st.fixed_dictionaries(
    {},
    optional={
        "priority": mostly(st.sampled_from(["high", "default", "low"]), st.just("high\n"), anything),
        "delay": seconds,
        "at": moments,
        "retry": retries,
        "timeout": seconds,
        "result_ttl": seconds,
        "failure_ttl": seconds,
        "ttl": seconds,
        "job_id": ids,
        "depends_on": st.one_of(ids, st.lists(ids, max_size=3)),
        "meta": mostly(st.dictionaries(st.text(max_size=10), json_values, max_size=4), anything),
    },
)


def attempt(outcome: str) -> None:
    COUNTS[outcome] = COUNTS.get(outcome, 0) + 1


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(job_name=job_names, job_params=params, job_options=options)
def test_enqueue_returns_an_id_or_raises_a_queue_error(r, settings, job_name, job_params, job_options):
    queue = RQQueue(r, settings)
    try:
        job_id = queue.enqueue(job_name, job_params, **job_options)
    except QueueError as exc:
        attempt(f"refused: {type(exc).__name__}")
    else:
        attempt("accepted")
        assert keys.JOB_ID_RE.fullmatch(job_id)
        assert r.exists(keys.job(job_id))
    stray = {key for key in all_keys(r) if not key.decode(errors="replace").startswith(keys.NAMESPACES)}
    assert not stray


@settings(
    max_examples=EXAMPLES // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(job_names, params, ids), min_size=0, max_size=4))
def test_enqueue_many_is_all_or_nothing_with_queue_errors_only(r, settings, batch):
    queue = RQQueue(r, settings)
    before = all_keys(r)
    requests = [JobRequest(name, p, job_id=job_id) for name, p, job_id in batch]  # type: ignore[arg-type]
    try:
        queue.enqueue_many(requests)
    except QueueError:
        attempt("batch refused")
        assert all_keys(r) == before  # a refused batch writes nothing
    else:
        attempt("batch accepted")
    assert all(key.decode(errors="replace").startswith(keys.NAMESPACES) for key in all_keys(r))


@settings(
    max_examples=EXAMPLES // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ids, st.sampled_from(["get", "cancel", "stop", "wait"]))
def test_reading_and_steering_any_id_raises_queue_errors_only(r, settings, job_id, operation):
    queue = RQQueue(r, settings)
    call = {
        "get": lambda: queue.get(job_id),
        "cancel": lambda: queue.cancel(job_id),
        "stop": lambda: queue.stop(job_id),
        "wait": lambda: queue.wait(job_id, timeout=0.01),
    }[operation]
    try:
        call()
    except QueueError as exc:
        attempt(f"{operation} refused: {type(exc).__name__}")
    else:
        attempt(f"{operation} done")
    assert all(key.decode(errors="replace").startswith(keys.NAMESPACES) for key in all_keys(r))


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    total = sum(COUNTS.values())
    print(f"\nenqueue properties: {total} calls {dict(sorted(COUNTS.items()))}")
