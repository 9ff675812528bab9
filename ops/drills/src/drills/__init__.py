"""Failure drills run against a real dev stack."""
