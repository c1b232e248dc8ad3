"""Helpers for tests and CPU benchmarks only: tiny random models and fake checkpoints.

Nothing in the library imports this package; it builds random weights in the layouts the
library reads (official checkpoint files, diffusers components) so that tests never download.
"""
