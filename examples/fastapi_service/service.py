"""The example service: `POST /documents/{doc_id}` enqueues `ingest_doc`, `GET /jobs/{job_id}` shows it.

Run it (and a worker) from the repository's root:

    uvicorn examples.fastapi_service.service:app --port 8000
    python -m app.worker --concurrency 20

The queue is built in the lifespan through the one composition root (`bootstrap_async`), from
the environment's settings (REDIS_URL, QUEUE_*); every handler awaits it, so no request blocks
the event loop on Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from app.bootstrap import bootstrap_async
from app.config import Settings
from app.infrastructure.queue import INGEST_DOC_JOB, AsyncRQQueue, JobView
from app.infrastructure.queue.errors import EnqueueError, JobNotFoundError, QueueError


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service for `settings` (default: the environment's, read when the app starts)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = bootstrap_async(settings)
        app.state.queue = services.queue
        try:
            yield
        finally:
            await services.aclose()

    service = FastAPI(title="taskq example: document ingestion", lifespan=lifespan)

    @service.exception_handler(QueueError)
    async def unavailable(request: Request, exc: QueueError) -> JSONResponse:
        # Redis down or refusing after the bounded retry: the client may try again later.
        status = 503 if exc.retryable else 500
        return JSONResponse({"error": str(exc)}, status_code=status, headers={"Retry-After": "1"})

    @service.post("/documents/{doc_id}", status_code=202)
    async def ingest(
        doc_id: str, request: Request, idempotency_key: str | None = Header(default=None)
    ) -> dict[str, str]:
        """Enqueue `ingest_doc(doc_id)`; 202 with the job's id. The same Idempotency-Key makes one job."""
        queue: AsyncRQQueue = request.app.state.queue
        try:
            job_id = await queue.enqueue(
                job_name=INGEST_DOC_JOB, params={"doc_id": doc_id}, job_id=idempotency_key
            )
        except EnqueueError as exc:  # bad input: nothing was written
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return {"job_id": job_id, "status_url": f"/jobs/{job_id}"}

    @service.get("/jobs/{job_id}")
    async def job(job_id: str, request: Request) -> dict[str, Any]:
        """The job's view: status, attempts, progress, result or error."""
        queue: AsyncRQQueue = request.app.state.queue
        try:
            view = await queue.get(job_id)
        except (JobNotFoundError, EnqueueError):  # no such job, or not an id at all
            raise HTTPException(status_code=404, detail=f"no job {job_id!r}") from None
        return as_json(view)

    @service.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return service


def as_json(view: JobView) -> dict[str, Any]:
    """What `GET /jobs/{job_id}` returns for a job."""
    return {
        "id": view.id,
        "job_name": view.job_name,
        "status": view.status.value,
        "queue": view.queue,
        "attempts": view.attempts,
        "enqueued_at": view.enqueued_at.isoformat() if view.enqueued_at else None,
        "started_at": view.started_at.isoformat() if view.started_at else None,
        "ended_at": view.ended_at.isoformat() if view.ended_at else None,
        "progress": None
        if view.progress is None
        else {"done": view.progress.done, "total": view.progress.total, "message": view.progress.message},
        "result": view.result,
        "error": view.error,
    }


app = create_app()
