"""The on-disk contract of docs/format.md as pure code: names, layouts and rules, no I/O.

Ref namespaces (`refs`), run-tree file names, JSON layout and commit
messages (`storage`), run ids and names (`ids`), the schema readers check
(`schema`), value validation (`values`), the liveness rule (`status`) and
the Parquet encoding of metric series (`metrics`). Nothing here imports
another gitxp package except `gitxp.errors`.
"""
