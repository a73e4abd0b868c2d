"""fnud: supervise uWSGI and nginx as one stack."""
__version__ = "0.1.0"
