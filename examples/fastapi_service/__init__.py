"""A FastAPI service that enqueues `ingest_doc` with `AsyncRQQueue` (see README.md)."""
