"""Discovery: evolution strategies (and a relaxed gradient trainer) over BetaPolicy weights."""
