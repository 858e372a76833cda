"""Dropfit's domain: dataset formatting, naming, SageMaker requests, label maps, predictions.

Submodules are imported explicitly by the functions that need them, so the predict path never
pays for pandas (only `dropfit.dataset` imports it).
"""
