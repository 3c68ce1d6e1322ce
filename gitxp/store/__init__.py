"""Runs in a repository: reading a run, the listing index, the query engine, edits, artifacts.

The seam every front end calls (CLI, UI, hooks, the MLflow layer): it
knows the format (`gitxp.format`) and the repository (`gitxp.git`), and
nothing about a live run, a command line or a web page.
"""
