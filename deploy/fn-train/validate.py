#!/usr/bin/env python3
"""Checks deploy/fn-train/service.yaml against the Knative Service CRD's openAPIV3Schema
(shared/spec/knative-serving-service-crd.yaml). Unknown fields are refused as the API
server's structural pruning would drop them (additionalProperties: false wherever the schema
lists properties and does not preserve unknown fields). Also checks the fn-train choices:
containerConcurrency 1, cpu 1 / memory 200Mi, readiness and liveness probes.

    python3 deploy/fn-train/validate.py [path/to/knative-serving-service-crd.yaml]
Needs PyYAML and jsonschema (apt-get install python3-yaml python3-jsonschema)."""
import os
import sys

import jsonschema
import yaml

here = os.path.dirname(os.path.abspath(__file__))
crd_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    here, "..", "..", "..", "shared", "spec", "knative-serving-service-crd.yaml")
with open(crd_path) as f:
    schema = yaml.safe_load(f)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def closed(node):
    if isinstance(node, dict):
        if (node.get("type") == "object" and "properties" in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
                and "additionalProperties" not in node):
            node["additionalProperties"] = False
        for v in node.values():
            closed(v)
    elif isinstance(node, list):
        for v in node:
            closed(v)


closed(schema)
with open(os.path.join(here, "service.yaml")) as f:
    doc = yaml.safe_load(f)
jsonschema.validate(doc, schema)
spec = doc["spec"]["template"]["spec"]
(container,) = spec["containers"]
assert spec["containerConcurrency"] == 1, "fn-train runs one job per pod"
assert container["resources"]["limits"] == {"cpu": "1", "memory": "200Mi"}
assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert len(container["ports"]) == 1 and "name" not in container["ports"][0]
print("deploy/fn-train/service.yaml: valid against", os.path.relpath(crd_path))
