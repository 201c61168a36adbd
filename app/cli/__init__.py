"""The `taskq` console script: see `main.py`."""
