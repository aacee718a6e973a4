"""Controllers: observation features, the rule engine, baselines and the learned policy."""
