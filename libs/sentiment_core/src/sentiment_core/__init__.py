"""sentiment_core: the ML library shared by the trainer and the inference service.

Import what you need from its modules, each named for its one job: `data` (loading, validation, splits), `prepare`
(building the dataset), `text` (cleaning), `model` (the pipeline and its artifact), `evaluation` (scores), `params`
(params.yaml), `registry` (MLflow runs, versions, aliases), `tags` (the tag names) and `settings` (shared settings).
This package imports none of them, so `import sentiment_core.settings` does not pay for pandas and scikit-learn.
"""
