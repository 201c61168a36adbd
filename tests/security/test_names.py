"""Job ids and queue names become Redis keys: only the documented alphabet may pass, nothing else."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.infrastructure.queue.errors import InvalidJobIdError, InvalidQueueNameError
from app.infrastructure.queue.import_utils import split_path
from app.infrastructure.queue.keys import check_job_id, check_queue_name

ID_ALPHABET = set(string.ascii_letters + string.digits + "_-")
QUEUE_ALPHABET = set(string.ascii_lowercase + string.digits + "_-")


def is_valid_id(value: str) -> bool:
    return 1 <= len(value) <= 128 and set(value) <= ID_ALPHABET


def is_valid_queue(value: str) -> bool:
    return 1 <= len(value) <= 64 and set(value) <= QUEUE_ALPHABET and value[0] not in "_-"


@pytest.mark.parametrize("bad", ["abc\n", "abc\r\n", "\nabc", "a:b", "a b", "", "x" * 129, "é"])
def test_a_job_id_with_anything_outside_the_alphabet_is_refused(bad):
    # Python's `$` matches before a trailing newline: "abc\n" passed `^...$` with `match`.
    with pytest.raises(InvalidJobIdError):
        check_job_id(bad)


@pytest.mark.parametrize("bad", ["high\n", "a:intermediate", "High", "-a", "", "q" * 65])
def test_a_queue_name_with_anything_outside_the_alphabet_is_refused(bad):
    with pytest.raises(InvalidQueueNameError):
        check_queue_name(bad)


def test_a_job_path_with_a_trailing_newline_is_not_a_path():
    with pytest.raises(Exception, match="not a dotted"):
        split_path("os.system\n")


@settings(max_examples=500)
@given(
    st.one_of(st.text(max_size=140), st.from_regex(re.compile(r"[A-Za-z0-9_-]{1,130}\n?"), fullmatch=True))
)
def test_check_job_id_accepts_exactly_the_documented_ids(value):
    if is_valid_id(value):
        assert check_job_id(value) == value
    else:
        with pytest.raises(InvalidJobIdError):
            check_job_id(value)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=70), st.from_regex(re.compile(r"[a-z0-9_-]{1,66}\n?"), fullmatch=True)))
def test_check_queue_name_accepts_exactly_the_documented_names(value):
    if is_valid_queue(value):
        assert check_queue_name(value) == value
    else:
        with pytest.raises(InvalidQueueNameError):
            check_queue_name(value)


@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_non_strings_are_neither_ids_nor_queue_names(value):
    with pytest.raises(InvalidJobIdError):
        check_job_id(value)
    with pytest.raises(InvalidQueueNameError):
        check_queue_name(value)
