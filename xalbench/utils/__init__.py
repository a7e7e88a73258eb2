"""Small shared helpers with no torch import."""
