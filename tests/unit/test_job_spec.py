import math
from datetime import datetime, timedelta, timezone

import pytest

from app.config import Settings
from app.infrastructure.queue.errors import (
    EnqueueError,
    InvalidJobIdError,
    InvalidOptionError,
    InvalidParamsError,
    PayloadTooLargeError,
    SerializationError,
    UnknownJobError,
)
from app.infrastructure.queue.job_paths import INGEST_DOC_JOB, JobRegistry
from app.infrastructure.queue.job_spec import JobSpecBuilder, describe
from app.infrastructure.queue.port import JobRequest, RetryPolicy
from app.infrastructure.queue.serialization import make_serializer
from tests.support.jobs import TEST_JOBS

NOW = 1_800_000_000.0


def builder(**overrides):
    settings = Settings(extra_jobs=TEST_JOBS, **overrides)
    return JobSpecBuilder(settings, JobRegistry(extra=TEST_JOBS), make_serializer(settings.serializer))


def build(job_name=INGEST_DOC_JOB, params=None, **options):
    return builder().build(
        JobRequest(job_name, params if params is not None else {"doc_id": "1"}, **options), NOW
    )


def test_defaults_come_from_settings():
    spec = build()
    assert spec.queue == "default"
    assert spec.timeout == 180
    assert spec.result_ttl == 3600
    assert spec.ttl is None
    assert spec.run_at is None
    assert len(spec.retry_intervals) == 3
    assert spec.max_attempts == 4
    assert len(spec.job_id) == 32 and not spec.explicit_id


def test_params_named_like_rq_options_are_kept_as_params():
    params = {
        "job_timeout": 1,
        "description": "d",
        "meta": {"a": 1},
        "ttl": 2,
        "job_id": "x",
        "result_ttl": 3,
    }
    spec = build("echo", params)
    assert spec.params == params
    assert spec.timeout == 180 and spec.ttl is None


@pytest.mark.parametrize(
    ("params", "error"),
    [([("a", 1)], InvalidParamsError), ("doc", InvalidParamsError), ({1: "x"}, InvalidParamsError)],
)
def test_params_must_be_a_mapping_of_str_keys(params, error):
    with pytest.raises(error):
        build("echo", params)


def test_unserializable_param_is_named():
    with pytest.raises(SerializationError) as caught:
        build("echo", {"ok": 1, "bad": lambda: 1})
    assert caught.value.key == "bad"


def test_json_mode_rejects_non_json_params_naming_the_key():
    b = builder(serializer="json")
    with pytest.raises(SerializationError) as caught:
        b.build(JobRequest("echo", {"ok": [1], "when": datetime.now(timezone.utc)}), NOW)
    assert caught.value.key == "when"


def test_payload_over_the_bound_is_rejected():
    b = builder(max_payload_bytes=1024)
    with pytest.raises(PayloadTooLargeError) as caught:
        b.build(JobRequest("echo", {"blob": "x" * 2000}), NOW)
    assert caught.value.limit == 1024 and caught.value.size > 1024


def test_unknown_job():
    with pytest.raises(UnknownJobError):
        build("nope")


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"delay": -1}, "delay"),
        ({"delay": "soon"}, "delay"),
        ({"delay": math.inf}, "delay"),
        ({"delay": 1, "at": datetime.now(timezone.utc)}, "delay"),
        ({"at": datetime(2030, 1, 1)}, "at"),
        ({"retry": True}, "retry"),
        ({"retry": -1}, "retry"),
        ({"retry": "3"}, "retry"),
        ({"retry": RetryPolicy(jitter=2)}, "retry.jitter"),
        ({"retry": RetryPolicy(factor=0.5)}, "retry.factor"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "1m"}, "timeout"),
        ({"result_ttl": -5}, "result_ttl"),
        ({"ttl": 0}, "ttl"),
        ({"meta": {"k": object()}}, "meta"),
        ({"meta": {1: "v"}}, "meta"),
        ({"meta": {"big": "x" * 20000}}, "meta"),
        ({"depends_on": []}, "depends_on"),
        ({"depends_on": "a", "delay": 5}, "depends_on"),
    ],
)
def test_bad_options_name_the_option(options, option):
    with pytest.raises(InvalidOptionError) as caught:
        build(**options)
    assert caught.value.option == option
    assert isinstance(caught.value, EnqueueError)


@pytest.mark.parametrize("job_id", ["", "a:b", "a b", "x" * 129, "é", "../x", 12])
def test_bad_job_ids(job_id):
    with pytest.raises(InvalidJobIdError):
        build(job_id=job_id)


def test_depends_on_ids_are_checked_too():
    with pytest.raises(InvalidJobIdError):
        build(depends_on=["ok", "rq:job:x"])


def test_priority_maps_to_the_configured_queue():
    assert build(priority="high").queue == "high"
    b = builder(queue_names=("p1", "p2", "p3"))
    assert b.build(JobRequest(INGEST_DOC_JOB, {"doc_id": "1"}, priority="low"), NOW).queue == "p3"


def test_delay_and_at_schedule_the_job():
    # A delay is relative (Redis's clock counts it from the enqueue); `at` is an absolute time.
    assert (build(delay=2).run_in, build(delay=2).run_at) == (2.0, None)
    assert build(delay=timedelta(minutes=1)).run_in == 60
    assert (build(delay=0).run_in, build(delay=0).run_at) == (None, None)
    at = datetime.fromtimestamp(NOW + 30, tz=timezone.utc)
    assert (build(at=at).run_at, build(at=at).run_in) == (NOW + 30, None)
    assert build(at=datetime.fromtimestamp(NOW - 30, tz=timezone.utc)).run_at is None


def test_delays_and_times_are_bounded_to_ten_years():
    for bad in ({"delay": 1e999}, {"delay": float("nan")}, {"delay": 11 * 365 * 24 * 3600}):
        with pytest.raises(InvalidOptionError):
            build(**bad)
    with pytest.raises(InvalidOptionError, match="within ten years"):
        build(at=datetime.fromtimestamp(NOW + 11 * 365 * 24 * 3600, tz=timezone.utc))


def test_retry_int_and_policy():
    assert build(retry=0).retry_intervals == ()
    assert len(build(retry=5).retry_intervals) == 5
    policy = RetryPolicy(max_retries=3, base=1, factor=2, cap=3, jitter=0)
    assert build(retry=policy).retry_intervals == (1, 2, 3)


def test_default_backoff_is_about_ten_seconds_a_minute_five_minutes():
    for _ in range(50):
        first, second, third = build().retry_intervals
        assert 9 <= first <= 11 and 54 <= second <= 66 and 270 <= third <= 330


def test_float_timeouts_round_up():
    assert build(timeout=1.2).timeout == 2


def test_description_is_rq_style_and_bounded():
    text = describe("pkg.mod.fn", {"b": "x" * 1000, "a": 1})
    assert text.startswith("pkg.mod.fn(a=1, b='xxx")
    assert len(text) < 120


def test_params_must_be_a_mapping_none_included():
    for bad in (None, [("doc_id", "1")], "doc_id=1"):
        with pytest.raises(InvalidParamsError, match="must be a mapping of str keys"):
            builder().build(JobRequest(INGEST_DOC_JOB, bad), NOW)


def test_an_unknown_option_is_refused_by_name():
    with pytest.raises(InvalidOptionError, match="prioritty"):
        builder().build(JobRequest(INGEST_DOC_JOB, {"doc_id": "1"}, prioritty="high"), NOW)


def test_a_request_without_options_gets_what_the_options_path_gives_by_default():
    """The no-options fast path (defaults computed once) and the general one build the same job."""
    fast = builder(ttl=60).build(JobRequest("add", {"a": 1, "b": 2}), NOW)
    general = builder(ttl=60).build(JobRequest("add", {"a": 1, "b": 2}, priority="default"), NOW)
    random_parts = {"job_id", "retry_intervals"}
    assert {k: v for k, v in fast._asdict().items() if k not in random_parts} == {
        k: v for k, v in general._asdict().items() if k not in random_parts
    }
    assert len(fast.job_id) == 32 and len(fast.retry_intervals) == len(general.retry_intervals) == 3
    for got, base in zip(fast.retry_intervals, (10.0, 60.0, 300.0), strict=True):
        assert base * 0.9 <= got <= base * 1.1
