"""Ingress adapters: each client format parsed to the canonical request and rendered back."""
