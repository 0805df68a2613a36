"""Shared Flax building blocks."""
