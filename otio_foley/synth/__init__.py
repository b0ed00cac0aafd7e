"""Procedurally generated audio-visual scenes with known per-source stems (training and tests)."""
