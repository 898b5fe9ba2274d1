"""Data modules: whole datasets decoded once into tensors, batched by indexing."""
