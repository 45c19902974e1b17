"""Training: the grid, the networks, the regularizers, the batched and reference trainers,
evaluation and MLflow tracking."""
