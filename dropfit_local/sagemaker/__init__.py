"""Local SageMaker: training jobs, models, endpoints and runtime for the built-in k-NN."""

from dropfit_local.sagemaker.server import LocalSageMaker

__all__ = ["LocalSageMaker"]
