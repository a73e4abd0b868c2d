"""appserver."""
