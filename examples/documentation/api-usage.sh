#!/usr/bin/env bash
# How to call resilia's scoring API: the examples of the user guide (chapters/api.md).
# tests/test_documentation.py runs each block against a live service and checks the
# status that its "# expect:" line promises.
set -euo pipefail
RESILIA_URL=${RESILIA_URL:-http://127.0.0.1:18000}
show() { curl --silent --show-error --max-time 5 --write-out ' -> HTTP %{http_code}\n' "$@"; }

# [ready] expect: 200
show "$RESILIA_URL/health/ready"
# [end ready]

# [predict] expect: 200
show --request POST "$RESILIA_URL/predict" \
  --header 'Content-Type: application/json' \
  --data '{"customer_id": "C000042", "birth_date": "1990-04-12", "postcode": "69003",
           "signup_date": "2023-09-01", "plan": "confort", "monthly_fee": 19.9,
           "rides_last_month": 3, "support_calls_90d": 2, "late_payments_12m": 1}'
# [end predict]

# [known] expect: 200
show "$RESILIA_URL/customers/C000123/churn"
# [end known]

# [invalid] expect: 422
show --request POST "$RESILIA_URL/predict" \
  --header 'Content-Type: application/json' \
  --data '{"customer_id": "C000042", "plan": "gratuit"}'
# [end invalid]

# [unknown] expect: 404
show "$RESILIA_URL/customers/C999999/churn"
# [end unknown]
