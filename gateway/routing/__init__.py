"""Tiered routing: a route's classifier and ordered rules pick a target alias."""
