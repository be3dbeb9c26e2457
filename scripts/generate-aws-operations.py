#!/usr/bin/env python3
"""Writes data/aws-operations.jsonl: what it takes to name a v3 SDK call from its HTTP request alone.

The recorder's HTTP layer (sdk-v3/http.js) sees a bundled SDK's requests, not its commands. The
service comes from the `api/<serviceId>` token of the SDK's user agent (else the x-amz-target prefix
or the SigV4 signing name); JSON protocols name the operation in x-amz-target and query protocols in
the `Action=` form field, but REST protocols name it only through the HTTP binding of the service
model: method, URI pattern, literal and required query parameters, required headers. This table
holds those bindings for every REST service in botocore's models (newest API version of each), one
line per service after a header that indexes them (the format of scripts/indexed_lines.py) and lists
every service as `[serviceId, signingName, targetPrefix?]` (and, for services that share a signing
name, `endpointPrefixes`: the first labels of their host names, which tell them apart); each binding
reads:

    "<METHOD> <requestUri> <Operation>[ q:<required query name>]...[ h:<required header>]..."

and, to read a request's input back (the identifiers the IAM table builds ARNs from), `members` maps
where a scalar input member travels to its name: `u:<uri label>`, `q:<query name>`, `h:<header
name>` (lower case) and `b:<JSON body key>`, for every query and header member and for the URI labels
and body keys that are not the member's own name. A location that carries different members in
different operations of one service is mapped per operation instead, in `byOperation`.

Run it again after upgrading botocore and commit the result:

    python3 scripts/generate-aws-operations.py [OUTPUT]
"""

import os
import sys

import botocore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from botocore_models import service_models  # noqa: E402
from indexed_lines import write_indexed_lines  # noqa: E402

DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "aws-operations.jsonl")
REST_PROTOCOLS = ("rest-json", "rest-xml")
SCALAR_TYPES = ("string", "integer", "long", "boolean", "timestamp", "double", "float")
LOCATION_KEYS = {"uri": "u", "querystring": "q", "header": "h"}
def protocols(metadata):
    return metadata.get("protocols") or [metadata.get("protocol")]


def required_bindings(model, operation):
    """Required members bound to the query string or to headers, as (query names, header names)."""
    input_ref = operation.get("input")
    if not input_ref:
        return [], []
    shape = model["shapes"][input_ref["shape"]]
    required = set(shape.get("required", []))
    query, headers = [], []
    for name, member in shape.get("members", {}).items():
        if name not in required:
            continue
        location = member.get("location")
        if location == "querystring":
            query.append(member.get("locationName", name))
        elif location == "header":
            headers.append(member.get("locationName", name).lower())
    return sorted(query), sorted(headers)


def rest_bindings(model):
    """One line per operation; a deprecated operation whose binding a current one has too is left out
    (S3's GetBucketLifecycle beside GetBucketLifecycleConfiguration): the request cannot tell them
    apart, and today's SDKs send the current one."""
    bound = {}
    for name, operation in sorted(model["operations"].items()):
        http = operation.get("http", {})
        method, uri = http.get("method"), http.get("requestUri")
        if not method or not uri or " " in uri:
            continue
        query, headers = required_bindings(model, operation)
        binding = tuple([method, uri] + [f"q:{q}" for q in query] + [f"h:{h}" for h in headers])
        bound[name] = (binding, bool(operation.get("deprecated")))
    current = {binding for binding, deprecated in bound.values() if not deprecated}
    lines = []
    for name, (binding, deprecated) in bound.items():
        if deprecated and binding in current:
            print(f"left out deprecated {name}: {' '.join(binding)} names a current operation too", file=sys.stderr)
            continue
        method, uri, *required = binding
        lines.append(" ".join([method, uri, name, *required]))
    return lines


def input_locations(model, operation, body_keys):
    """(location key, member) of the scalar members of an operation's input that travel by name."""
    input_ref = operation.get("input")
    if not input_ref:
        return []
    shape = model["shapes"][input_ref["shape"]]
    found = []
    for name, member in shape.get("members", {}).items():
        location = member.get("location")
        if model["shapes"][member["shape"]].get("type") not in SCALAR_TYPES:
            continue
        if location in LOCATION_KEYS:
            location_name = member.get("locationName", name)
            if location == "header":
                location_name = location_name.lower()
            if location == "uri" and location_name == name:
                continue
            found.append((f"{LOCATION_KEYS[location]}:{location_name}", name))
        elif location is None and body_keys and member.get("locationName", name) != name:
            found.append((f"b:{member['locationName']}", name))
    return found


def member_locations(model, body_keys):
    """`members` (service-wide) and `byOperation` (locations that mean different members)."""
    seen = {}
    for name, operation in model["operations"].items():
        for key, member in input_locations(model, operation, body_keys):
            seen.setdefault(key, {}).setdefault(member, []).append(name)
    members, by_operation = {}, {}
    for key, by_member in sorted(seen.items()):
        if len(by_member) == 1:
            members[key] = next(iter(by_member))
            continue
        for member, operations in by_member.items():
            for operation in operations:
                by_operation.setdefault(operation, {})[key] = member
    return members, {op: by_operation[op] for op in sorted(by_operation)}


def shared_signing_prefixes(services, endpoint_prefixes):
    """The endpoint prefix of every service whose signing name another service has too."""
    signers = {}
    for service_id, signing_name, *_ in services.values():
        signers.setdefault(signing_name, []).append(service_id)
    shared = [sid for ids in signers.values() if len(ids) > 1 for sid in ids]
    return {sid: endpoint_prefixes[sid] for sid in sorted(shared) if endpoint_prefixes.get(sid)}


def main():
    output = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUTPUT)
    services = {}
    bindings = {}
    endpoint_prefixes = {}
    for folder, model in service_models():
        metadata = model["metadata"]
        service_id = metadata.get("serviceId")
        signing_name = metadata.get("signingName") or metadata.get("endpointPrefix")
        if not service_id or not signing_name:
            continue
        if service_id in services:
            # Two folders for one service (an old copy of the model): the first, as botocore loads it.
            print(f"skipped {folder!r}: serviceId {service_id!r} already read", file=sys.stderr)
            continue
        services[service_id] = [service_id, signing_name] + ([metadata["targetPrefix"]] if metadata.get("targetPrefix") else [])
        endpoint_prefixes[service_id] = metadata.get("endpointPrefix")
        if any(p in REST_PROTOCOLS for p in protocols(metadata)):
            members, by_operation = member_locations(model, "rest-json" in protocols(metadata))
            bindings[service_id] = {"rest": rest_bindings(model), "members": members}
            if by_operation:
                bindings[service_id]["byOperation"] = by_operation
    header = {
        "description": "HTTP bindings of AWS operations by CSM Service (the botocore model serviceId), "
        "for naming calls seen only as HTTP requests: this header, with every service's signing name and "
        "target prefix, then one line of REST bindings per REST service at the byte offset its index "
        "gives. Generated by scripts/generate-aws-operations.py; do not edit by hand.",
        "botocoreVersion": botocore.__version__,
        "services": list(services.values()),
        "endpointPrefixes": shared_signing_prefixes(services, endpoint_prefixes),
    }
    write_indexed_lines(output, header, bindings)
    rest = sum(len(b["rest"]) for b in bindings.values())
    print(f"{len(services)} services, {rest} REST operations, from botocore {botocore.__version__} -> {output}")


if __name__ == "__main__":
    main()
