"""`python -m app.worker`: see `app/worker/cli.py`."""

from app.worker.cli import worker_command

if __name__ == "__main__":
    worker_command(prog_name="python -m app.worker")
