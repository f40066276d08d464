"""Shared foundation of every Phalanx service: events, subjects, bus, settings, lifecycle, clock."""
