"""Benchmarks, completion backends, execution harness, pass@k and feedback modes."""
