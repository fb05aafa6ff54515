"""Northstar: shared plumbing for the pipeline's stages (settings, Airflow environment, setup)."""
