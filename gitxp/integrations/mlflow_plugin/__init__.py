"""MLflow's plugin interface, served by gitxp: the `gitxp:` tracking store and artifact repository.

Installed gitxp registers two entry points (pyproject.toml), both under the
URI scheme `gitxp`: `mlflow.tracking_store` -> `entry.tracking_store`
(which builds `store.GitxpTrackingStore`) and `mlflow.artifact_repository`
-> `entry.artifact_repository` (`artifacts.GitxpArtifactRepository`). With `MLFLOW_TRACKING_URI=gitxp:` any MLflow
code (fluent API, `MlflowClient`, autolog, `log_model`, `mlflow server`)
records gitxp runs. See docs/mlflow.md.

Modules: `entry` (what the entry points name: light, the rest loads on first use), `uri` (the URI forms), `live` (the runs this process records),
`convert` (gitxp runs and experiments as MLflow entities), `store` (the
tracking store: runs), `experiments` (its experiment half), `models`
(LoggedModels, inputs and outputs), `artifacts` (the artifact repository).
They import mlflow at module level: only MLflow loads them.
"""
