"""Render farms: sharded renders, assembly, and the Ray executor."""
