"""Bandit policies that learn online: Thompson sampling (Beta-Bernoulli and a linear Gaussian
posterior), epsilon-greedy and uniform random; online simulation with regret on a synthetic
environment, and replay evaluation on uniformly random logs."""
