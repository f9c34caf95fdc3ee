#!/usr/bin/env python3
"""Checks fedge's Knative Service manifests against the Knative Service CRD's
openAPIV3Schema (shared/spec/knative-serving-service-crd.yaml), refusing unknown fields
as the API server's structural pruning would drop them (additionalProperties: false
wherever the schema lists properties and does not preserve unknown fields), then checks
each function's resource envelope from design.md.

    python3 deploy/validate.py [path/to/knative-serving-service-crd.yaml]

Needs PyYAML and jsonschema (apt-get install python3-yaml python3-jsonschema)."""
import os
import sys

import jsonschema
import yaml

here = os.path.dirname(os.path.abspath(__file__))
crd_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    here, "..", "..", "shared", "spec", "knative-serving-service-crd.yaml")

# Per service: limits, containerConcurrency (None = any) and probe paths.
ENVELOPE = {
    "fn-train": ({"cpu": "1", "memory": "200Mi"}, 1, "/readyz", "/healthz"),
    "fn-serve": ({"cpu": "400m", "memory": "100Mi"}, None, None, None),
}


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


with open(crd_path) as f:
    schema = yaml.safe_load(f)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
closed(schema)

for name, (limits, concurrency, ready, live) in ENVELOPE.items():
    path = os.path.join(here, name, "service.yaml")
    with open(path) as f:
        doc = yaml.safe_load(f)
    jsonschema.validate(doc, schema)
    spec = doc["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["resources"]["limits"] == limits, f"{name}: limits {limits}"
    if concurrency is not None:
        assert spec["containerConcurrency"] == concurrency, f"{name}: containerConcurrency"
    if ready:
        assert container["readinessProbe"]["httpGet"]["path"] == ready
    if live:
        assert container["livenessProbe"]["httpGet"]["path"] == live
    assert len(container["ports"]) == 1 and "name" not in container["ports"][0]
    print(f"deploy/{name}/service.yaml: valid against", os.path.relpath(crd_path))
