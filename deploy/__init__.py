"""Deployment: N app processes behind nginx (serve.py); the hosted install with CPU-only wheels (cloud/)."""
