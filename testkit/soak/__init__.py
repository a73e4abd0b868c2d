"""The chaos soak: a seeded random sequence of what production does to a stack under
load, a model of what must serve after each step, and invariants checked at the end
(`make soak`; a 60 s version runs in `make test`)."""
