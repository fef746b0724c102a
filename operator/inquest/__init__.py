"""inquest: a read-only Kubernetes operator that investigates incidents."""

__version__ = "0.1.0"
