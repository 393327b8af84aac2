"""The only package that talks to the Kubernetes API: the client, the controller, its
process and Lease, and what the CLI does to Pipelines (an import-linter contract in
pyproject.toml holds that)."""
