"""`kubectl inquest`, the kubectl plugin: cli (commands), render (pure report rendering), kube (API access)."""
