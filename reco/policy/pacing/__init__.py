"""Budget pacing for one advertiser in second-price auctions: a Lagrangian dual-paced bidder,
unpaced and fixed-throttle baselines, and the hindsight optimum they are measured against."""
