"""Off-policy evaluation: estimates of a new policy's value from logged bandit feedback (IPW,
SNIPW, DM, DR, switch-DR) with bootstrap intervals, checked against a synthetic bandit with known
rewards and against the Open Bandit Dataset, where the evaluated policy's own logs give the truth."""
