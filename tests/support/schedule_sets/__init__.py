"""Schedules for the tests: `QUEUE_SCHEDULES_MODULE=tests.support.schedule_sets.<module>`.

Each module reads its ledger path from the environment (TASKQ_TEST_SCHEDULE_LEDGER), so a test's
worker processes write where the test reads.
"""
