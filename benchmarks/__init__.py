"""gitxp's side-by-side benchmark suite against MLflow, TensorBoard (tensorboardX) and DVC.

Run it with ``python -m benchmarks`` (``--quick`` for a short pass,
``--only NAME`` for one measure group); see docs/performance.md.
"""
