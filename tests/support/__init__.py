"""Test support shared by every tier: contexts, the in-memory engine, crash injection, claim checks, waiting.

- ``contexts``: request contexts and the seeded image id;
- ``crash``: ``SimulatedCrash`` and the helpers that make a patched call kill the "worker";
- ``engine``: the in-memory engine (real FlowRunner and flows, a queue the test delivers);
- ``claims``: the one assertion that resource claims follow the servers;
- ``wait``: polling with a bounded timeout and a failure message that says what was awaited.
"""
