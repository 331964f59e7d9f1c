#!/bin/bash
# Starts the Spark master (placeholder for FATE-Builder's master.sh).
set -e
exec /spark/bin/spark-class org.apache.spark.deploy.master.Master \
  --port "${SPARK_MASTER_PORT}" --webui-port "${SPARK_MASTER_WEBUI_PORT}"
