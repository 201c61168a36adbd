"""`make bench` / `python -m bench`: taskq side by side with rq, huey, dramatiq and raw Redis (issue 7)."""
