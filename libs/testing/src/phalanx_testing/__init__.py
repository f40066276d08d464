"""Test kit: real servers on free ports, a fake clock, and waiting helpers."""
