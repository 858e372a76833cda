"""EventBridge events Dropfit reacts to, as Powertools parser models (unknown fields ignored)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel


class TrainingArtifacts(BaseModel):
    S3ModelArtifacts: str


class TrainingJobDetail(BaseModel):
    TrainingJobName: str
    TrainingJobStatus: str
    FailureReason: str | None = None
    ModelArtifacts: TrainingArtifacts | None = None


class TrainingJobStateChange(EventBridgeModel):
    detail: TrainingJobDetail


class EndpointDetail(BaseModel):
    EndpointName: str
    EndpointStatus: str


class EndpointStateChange(EventBridgeModel):
    detail: EndpointDetail


class ProcessingJobDetail(BaseModel):
    ProcessingJobName: str
    ProcessingJobStatus: str
    FailureReason: str | None = None
    ExitMessage: str | None = None


class ProcessingJobStateChange(EventBridgeModel):
    detail: ProcessingJobDetail


TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
PROCESSING_JOB_STATE_CHANGE = "SageMaker Processing Job State Change"
