"""Dropfit's command line and its HTTP API client: stdlib and botocore only, no Lambda layer."""
