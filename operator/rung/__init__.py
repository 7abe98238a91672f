"""Rung: a Kubernetes operator that climbs KServe model deployments up an MLOps maturity ladder."""
