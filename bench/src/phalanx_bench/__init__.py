"""Demo seeding, start-up waiting and the benchmark; they reach services only through HTTP."""
