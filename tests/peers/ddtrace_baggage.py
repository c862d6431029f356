"""What ddtrace does with a request that carries only W3C baggage: the
context it extracts, and the headers of a span started under it. Prints
JSON."""
import json
import sys

from ddtrace.propagation.http import HTTPPropagator
from ddtrace.trace import tracer

headers = json.loads(sys.argv[1])
context = HTTPPropagator.extract(headers)
result = {
    "extracted_trace_id": context.trace_id,
    "extracted_baggage": context.get_all_baggage_items(),
}
with tracer.start_span("py.baggage", child_of=context, activate=True) as span:
    injected = {}
    HTTPPropagator.inject(span.context, injected)
    result["parent_id"] = span.parent_id
    result["baggage"] = span.context.get_all_baggage_items()
    result["injected"] = injected
print(json.dumps(result), flush=True)
