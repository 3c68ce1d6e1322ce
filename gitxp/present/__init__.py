"""What people see, shared by the CLI, the web UI and the hooks: text tables, JSON, views, plots, reports.

Formatting lives here once, so `gitxp log`, the UI and a hook's message
show a value the same way.
"""
