"""The caller of the web example: a Python client traced with ddtrace,
which injects its context in its default styles (Datadog and W3C). One
request per path given after the base URL, each in its own trace. Prints,
as JSON, each request's path, status, ids and the headers sent."""
import json
import sys
import urllib.error
import urllib.request

from ddtrace.propagation.http import HTTPPropagator
from ddtrace.trace import tracer

base, paths = sys.argv[1], sys.argv[2:]
calls = []
for path in paths:
    with tracer.trace("py.client", service="py-shop", resource="GET " + path, span_type="http") as span:
        span.set_tag("span.kind", "client")
        headers = {}
        HTTPPropagator.inject(span.context, headers)
        request = urllib.request.Request(base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
                response.read()
        except urllib.error.HTTPError as error:
            status = error.code
        calls.append(
            {
                "path": path,
                "status": status,
                "trace_id": str(span.trace_id),
                "span_id": str(span.span_id),
                "headers": headers,
            }
        )
tracer.flush()
tracer.shutdown()
print(json.dumps(calls), flush=True)
