"""The user embedding (StarSpace, the pipeline's spine): model, training steps, export, index, evaluation.

- starspace: the model (a user is the pooled embedding of its topics) and its losses;
- fit: one training step and the validation ranks (Ray Train workers run these);
- export: the model as an artifact, and user vectors from histories;
- index: faiss indexes over users and topics, and their recall against exact search;
- holdout: held-out topic prediction (hit@k) for the model and the popularity baseline;
- report: the embeddings report (Markdown, the training curve) and its closing-summary lines;
- config: the ``embedding``, ``export`` and ``index`` config sections.
"""
