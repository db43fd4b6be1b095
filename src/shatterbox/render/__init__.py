"""Front-end renderers: they draw analysis results and never run a model."""
