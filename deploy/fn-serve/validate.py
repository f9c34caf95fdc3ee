#!/usr/bin/env python3
"""Validates service.yaml against the Knative Service CRD's openAPIV3Schema
(shared/spec/knative-serving-service-crd.yaml), rejecting unknown fields the way the
API server's structural-schema pruning would (additionalProperties: false wherever the
schema lists properties and does not preserve unknown fields).

    python3 deploy/fn-serve/validate.py [../shared/spec/knative-serving-service-crd.yaml]
Needs PyYAML and jsonschema (apt-get install python3-yaml python3-jsonschema)."""
import os
import sys

import jsonschema
import yaml

here = os.path.dirname(os.path.abspath(__file__))
crd_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    here, "..", "..", "..", "shared", "spec", "knative-serving-service-crd.yaml")
crd = yaml.safe_load(open(crd_path))
schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def strict(s):
    if isinstance(s, dict):
        if (s.get("type") == "object" and "properties" in s
                and not s.get("x-kubernetes-preserve-unknown-fields")
                and "additionalProperties" not in s):
            s["additionalProperties"] = False
        for v in s.values():
            strict(v)
    elif isinstance(s, list):
        for v in s:
            strict(v)


strict(schema)
doc = yaml.safe_load(open(os.path.join(here, "service.yaml")))
jsonschema.validate(doc, schema)
print("deploy/fn-serve/service.yaml: valid against", os.path.relpath(crd_path))
