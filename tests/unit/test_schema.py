"""The job model is defined once: the scripts build from it, the packers follow it, and a name
the schema does not define stops a script's build instead of reaching Redis."""

from __future__ import annotations

import re

import pytest

from app.infrastructure.queue import keys, lua
from app.infrastructure.queue.schema import (
    FIELDS,
    GROUPS,
    JOB_RECORD,
    KEYS,
    LAYOUTS,
    TRANSITIONS,
    JobStatus,
    Layout,
    SchemaError,
    pack_fields,
    pack_record,
    packer,
    record_fields,
)


@pytest.mark.parametrize("script", lua.NAMES)
def test_every_script_builds_with_no_schema_name_left(script):
    source = lua.source(script)
    assert source.startswith("#!lua\n")
    assert not re.search(
        r"\b(S|E|F|W|WS|SF|RESULT|RF|LIST|K|IN|CAN|MOVE|A)\.[a-z_]", source.partition("\n")[2]
    )


def test_a_name_the_schema_does_not_define_stops_the_build():
    layout = Layout(args=("job_id",))
    for typo in ("F.stauts", "S.parked", "CAN.prak(st)", "K.jobs(id)", "A.job", "MOVE.park(key, 'x')"):
        with pytest.raises(SchemaError, match="not in the schema"):
            lua._expand("park", f"local x = {typo}", layout)
    with pytest.raises(SchemaError):
        lua._expand("park", "local x = K.job", layout)  # a key of an id must be called with one


def test_names_expand_to_the_schema_values():
    layout = LAYOUTS["fail"]
    text, _ = lua._expand(
        "fail", "return {S.canceled, F.ended_at, A.retry_in, A.worker_key, K.queues}", layout
    )
    assert text == "return {'canceled', 'ended_at', ARGV[6], KEYS[1], 'rq:queues'}"
    header = lua._header({("CAN", "cancel"), ("MOVE", "cancel"), ("K", "job")}, layout)
    sources = sorted(TRANSITIONS["cancel"].sources)
    assert f"return {' or '.join(f's == {v!r}' for v in sources)}" in header
    assert "error('taskq: cancel cannot end in '" in header
    assert "local function k_job(x) return 'rq:job:' .. x end" in header


def test_a_script_gets_only_the_shared_functions_it_calls():
    assert "local function claim(" not in lua.source("enqueue_one")
    assert "local function server_now(" in lua.source("dequeue")  # claim calls it
    assert "local function cancel_dependents(" not in lua.source("finish")  # no failure path there
    assert "local function release_dependents(" not in lua.source("purge")


def test_packers_take_names_only_and_keep_the_layout_order():
    keys_, args = packer("reap")(queue="q", error=b"e", error_b64="b", limit=5, max_failed=9)
    assert (keys_, args) == ([], ["q", b"e", "b", 5, 9])
    with pytest.raises(TypeError):
        packer("reap")(queue="q", error=b"e", error_b64="b", max_failed=9)  # limit missing
    with pytest.raises(TypeError):
        packer("cancel")(job_id="j", queue="default")  # not an argument
    with pytest.raises(TypeError):
        packer("cancel")("j")  # by position: refused
    keys_, args = packer("dequeue")(
        worker_key="w",
        worker="n",
        exec_id="e",
        heartbeat_ttl=1,
        worker_ttl=2,
        promote="1",
        limits="",
        queues=["high", "low"],
    )
    assert keys_ == ["w"] and args == ["n", "e", 1, 2, "1", "", "high", "low"]


def test_a_record_packs_in_job_record_order_and_fills_its_fields():
    names = [name for name, _ in JOB_RECORD]
    values = {name: f"<{name}>" for name in names} | {"ttl": ""}
    record = pack_record(**values, depends_on=("a", "b"))
    assert record == [f"<{n}>" if n != "ttl" else "" for n in names] + [2, "a", "b"]
    fields = record_fields(record)
    assert fields["origin"] == "<queue>" and fields["data"] == "<data>"
    assert "created_at" not in fields  # stamped by the script, from Redis's clock
    assert "ttl" not in fields  # '' values are not written
    assert set(fields) <= set(FIELDS.values())


def test_transitions_and_groups_speak_of_real_statuses():
    statuses = {status.value for status in JobStatus}
    for transition in TRANSITIONS.values():
        assert transition.sources <= statuses | {""}
        assert transition.targets <= set(JobStatus)
    assert GROUPS["live"] | GROUPS["doomed"] == set(JobStatus)  # every status owns its id, or not
    assert not GROUPS["live"] & GROUPS["doomed"]


def test_python_builds_keys_from_the_same_templates():
    assert keys.job("x") == KEYS["job"].format("x")
    assert keys.key("started", "default") == "rq:wip:default"


def test_the_fields_packer_gives_the_hash_pairs_a_record_fills():
    names = [name for name, _ in JOB_RECORD]
    values = {name: f"<{name}>" for name in names} | {"ttl": "", "sig": b""}
    pairs = pack_fields(**values)
    assert dict(zip(pairs[::2], pairs[1::2], strict=True)) == record_fields(pack_record(**values))
