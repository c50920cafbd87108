"""sentiment_trainer: the Prefect flow `sentiment-training`, champion promotion and the `sentiment-trainer` CLI.

Kept import-light on purpose: `sentiment-trainer --help` must not pay for MLflow, Prefect or scikit-learn.
"""

FLOW_NAME = "sentiment-training"
LOCAL_POOL = "sentiment-local"
K8S_POOL = "sentiment-k8s"
LOCAL_DEPLOYMENT = "local"
K8S_DEPLOYMENT = "k8s"
