"""Network architectures, one module per family of networks."""
