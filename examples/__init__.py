"""Example services built on taskq (each folder has its README)."""
