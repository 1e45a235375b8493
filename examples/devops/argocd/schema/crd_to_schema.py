"""Turn Argo CD's Application CRD into a JSON schema for the spec that we write.

    python crd_to_schema.py application-crd.yaml > application.schema.json

The OpenAPI schema of the CRD's served version is kept, without ``status`` (Argo CD
writes it, we never do). Objects reject unknown fields (``additionalProperties``
false), as ``kubectl apply`` does with strict field validation: a misspelt key is an
error, not a field silently dropped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def strict(node):
    if isinstance(node, dict):
        node = {key: strict(value) for key, value in node.items()}
        if (
            node.get("type") == "object"
            and "properties" in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in node
        ):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [strict(item) for item in node]
    return node


def convert(crd: dict) -> dict:
    version = next(v for v in crd["spec"]["versions"] if v.get("served"))
    schema = version["schema"]["openAPIV3Schema"]
    schema["properties"].pop("status", None)
    schema["properties"]["metadata"] = {"type": "object"}  # checked by Kubernetes
    schema["properties"]["apiVersion"] = {
        "const": f"{crd['spec']['group']}/{version['name']}"
    }
    kind = crd["spec"]["names"]["kind"]
    schema["properties"]["kind"] = {"const": kind}
    schema = strict(schema)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"{kind} ({crd['spec']['group']}/{version['name']})",
        **schema,
        "required": ["apiVersion", "kind", "metadata", "spec"],
    }


if __name__ == "__main__":
    crd = yaml.safe_load(Path(sys.argv[1]).read_text(encoding="utf-8"))
    json.dump(convert(crd), sys.stdout, indent=1, sort_keys=True)
    print()
