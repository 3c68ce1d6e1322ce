"""Bridges to other tools: the MLflow-compatible API, MLflow and TensorBoard import/export,
Parquet/CSV export.

Each module imports its peer (mlflow, tensorboard, tensorboardX) only inside
functions, and only when the job needs it, so gitxp works without them.
"""
