"""Fleet simulator: many virtual agents in one process, speaking the real device API."""
