"""A Python service calling a Rust one: a ddtrace span whose context is
injected into the request's headers. Prints the span's ids as JSON."""
import json
import sys
import urllib.request

from ddtrace.propagation.http import HTTPPropagator
from ddtrace.trace import tracer

url = sys.argv[1]
with tracer.trace("py.client", service="py-client", resource="GET /rust") as span:
    headers = {}
    HTTPPropagator.inject(span.context, headers)
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    ids = {
        "trace_id": str(span.trace_id),
        "span_id": str(span.span_id),
        "priority": span.context.sampling_priority,
        "headers": headers,
    }
tracer.flush()
tracer.shutdown()
print(json.dumps(ids), flush=True)
