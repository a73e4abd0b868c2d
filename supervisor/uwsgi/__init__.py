"""uwsgi."""
