"""Tools the tests and the benchmarks share: throwaway stack files, a bounded load
client, the fleet test bed driver and the configuration table generator. Not part of
the fnud package."""
