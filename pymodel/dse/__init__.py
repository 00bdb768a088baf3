"""Design-space sweeps: ``pimphony sweep SPEC.toml`` on Dask distributed (docs/sweep.md)."""
