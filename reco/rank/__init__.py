"""The ranking stack: features, CTR / ranking models, one training loop, calibration, metrics.

Modules: config (the ``ranking:`` section), datasets (data views), features (encoders fitted on
training rows), catalog (side features by raw id), layers and models (the registry), losses,
training (the loop, free of Ray), calibration, metrics, evaluation, gbdt (LightGBM beside the
neural models) and artifact (one file that serving loads). ray_jobs/train_ranker.py runs the
loop on Ray Train.
"""
