"""Tests that start no process (a conftest refuses any): `make unit`."""
