"""Selectivity evaluation (the VGG-MonoAudio protocol) and its metrics."""
