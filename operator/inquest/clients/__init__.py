"""The only modules that talk to APIs: Kubernetes (and, later, Prometheus and notifiers)."""
