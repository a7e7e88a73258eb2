"""The AL harness: budgets, seeding, training, evaluation and the round loop."""
