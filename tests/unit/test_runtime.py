import pytest

from app.config import Settings
from app.worker import runtime


def test_report_progress_outside_a_job_does_nothing():
    runtime.report_progress(1, 2, "fine")
    assert runtime.current_job() is None


def test_report_progress_reaches_the_sink_of_the_current_job():
    seen = []
    context = runtime.JobContext("j", "n", "q", 1, Settings(), lambda d, t, m: seen.append((d, t, m)))
    with runtime.running(context):
        assert runtime.current_job() is context
        runtime.report_progress(3, 4, "almost")
    assert seen == [(3, 4, "almost")]
    assert runtime.current_job() is None


@pytest.mark.parametrize(("done", "total"), [(-1, 2), (3, 2), (1.5, 2), (True, 2), (1, "2")])
def test_report_progress_rejects_nonsense(done, total):
    with pytest.raises(ValueError):
        runtime.report_progress(done, total)
