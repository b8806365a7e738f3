"""Local stand-ins for provider HTTP APIs: they answer like the provider, record what they got and
fail on demand. Used by the tests and the benchmarks."""
