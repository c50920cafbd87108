-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
-- One server, one database per consumer: MLflow's backend store and Prefect's.
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
