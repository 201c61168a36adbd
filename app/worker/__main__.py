"""`python -m app.worker`: see `app/worker/cli.py`."""

from app.exits import run
from app.worker.cli import worker_command

if __name__ == "__main__":
    run(worker_command, "python -m app.worker")
