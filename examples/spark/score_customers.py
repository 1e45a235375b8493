"""spark-submit entry point of the resilia scoring job (local mode or Kubernetes).

    spark-submit --master local[2] score_customers.py --generate-rows 1000 --output out/
    spark-submit --master k8s://https://... --deploy-mode cluster ... \
        local:///opt/resilia/spark/score_customers.py --generate-rows 5000000 --output s3a://...
"""

import sys

from resilia_spark.job import main

if __name__ == "__main__":
    sys.exit(main())
