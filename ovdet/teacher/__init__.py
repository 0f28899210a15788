"""CLIP teachers: models and tools that give CLIP embeddings for distillation."""
