#!/bin/bash
# Starts a Spark worker that joins $SPARK_MASTER (placeholder for FATE-Builder's worker.sh).
set -e
exec /spark/bin/spark-class org.apache.spark.deploy.worker.Worker \
  --webui-port "${SPARK_WORKER_WEBUI_PORT}" "${SPARK_MASTER}"
