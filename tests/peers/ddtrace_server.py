"""A Python service called by a Rust one: extracts the incoming context with
ddtrace and continues the trace in a span. Serves one request, prints the
span's ids as JSON, and exits."""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from ddtrace.propagation.http import HTTPPropagator
from ddtrace.trace import tracer

result = {}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        context = HTTPPropagator.extract(dict(self.headers))
        tracer.context_provider.activate(context)
        with tracer.trace("py.server", service="py-server", resource="GET /py") as span:
            result.update(
                trace_id=str(span.trace_id),
                span_id=str(span.span_id),
                parent_id=str(span.parent_id),
                priority=span.context.sampling_priority,
            )
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.handle_request()
tracer.flush()
tracer.shutdown()
print(json.dumps(result), flush=True)
