"""Small shared utilities (image reading, visualisation, device choice)."""
