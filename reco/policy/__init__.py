"""Policies before they reach users: off-policy evaluation, bandits and budget pacing.

- ope: estimators of a policy's value from logged feedback (IPW, SNIPW, DM, DR, switch-DR), the
  reward model, bootstrap intervals, the logged data and the synthetic bandit with known truth;
- bandits: Thompson sampling, epsilon-greedy and random policies, simulation and replay (they
  read ope's logged data);
- pacing: second-price auctions and budget pacing against the hindsight optimum;
- config: the ``ope`` config section gathering all three; report: the job's Markdown page.
"""
