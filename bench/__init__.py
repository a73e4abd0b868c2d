"""`make bench`: throughput and reload numbers of the real stack, measured in one run."""
