"""`fnud init`: adopt an app deployed the tutorial way (``uwsgi --ini``, an nginx site):
a fnud-ready copy of the ini (every edit listed), a main nginx.conf that includes the
site unchanged, and a fnud.toml. ``ini_fix``, ``site``, ``toml`` and ``report`` are pure;
``plan`` reads, checks (the gate runs the app preflight) and writes. Nothing of the
daemon imports it; the CLI imports ``plan`` inside its command.

May import: common, config, uwsgi, checks, stack, reload.
"""
