"""Pure planning: what the world should look like, given a ModelDeployment. No I/O here."""
