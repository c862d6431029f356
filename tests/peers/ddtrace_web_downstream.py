"""The downstream of the web example: a Python inventory service traced
with ddtrace. Continues the caller's trace in a server span for each
`GET /inventory/<id>` (item 13 answers 503), prints its port first, serves
the number of requests given as its argument, then flushes and exits."""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from ddtrace.propagation.http import HTTPPropagator
from ddtrace.trace import tracer

requests = int(sys.argv[1])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        context = HTTPPropagator.extract(dict(self.headers))
        tracer.context_provider.activate(context)
        item = self.path.rsplit("/", 1)[-1]
        status, body = (503, b"try later\n") if item == "13" else (200, b"4\n")
        with tracer.trace(
            "py.inventory", service="py-inventory", resource="GET /inventory/<id>", span_type="web"
        ) as span:
            span.set_tag("span.kind", "server")
            span.set_tag("http.method", "GET")
            span.set_tag("http.status_code", str(status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
for _ in range(requests):
    server.handle_request()
tracer.flush()
tracer.shutdown()
