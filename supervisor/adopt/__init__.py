"""``fnud init``: adopt an app deployed the tutorial way (``uwsgi --ini``, an nginx site).

This package owns turning the user's uwsgi.ini and nginx site file into a fnud-ready
directory: a fixed copy of the ini (every edit listed), a main nginx.conf that includes
the site unchanged, and a fnud.toml.

* ``errors``, ``ini_fix``, ``site``, ``toml``, ``report``: pure (text in, frozen
  dataclasses or text out, no OS calls). They may import ``supervisor.ini``,
  ``supervisor.uwsgi_options``, ``supervisor.ports`` (its parsers),
  ``supervisor.checks.finding`` and ``supervisor.checks.uwsgi_values``.
* ``plan``: the only module that reads files, runs checks and writes. It may also import
  ``supervisor.config``, ``supervisor.checks``, ``supervisor.gate`` (the app preflight,
  which only the gate runs), ``supervisor.stack`` and ``supervisor.uwsgi``.

Nothing of the daemon imports this package; the CLI imports ``plan`` inside its command.
"""
