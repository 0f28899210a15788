"""Small shared utilities (image reading, visualisation)."""
