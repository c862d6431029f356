"""pytest plugin: system-tests' parametric scenario with local processes instead of Docker.

A stand-in for the missing /work/shared/conformance/harness (session tool, not project code).
Replaces docker_run (agent image -> local ddapm-test-agent, library image -> $PARAMETRIC_APP_CMD),
the scenario's docker configure, the docker networks, and optionally the manifest.
"""

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import time

import pytest

AGENT_BIN = os.environ.get("PARAMETRIC_AGENT_BIN", "ddapm-test-agent")
APP_CMD = os.environ["PARAMETRIC_APP_CMD"]
IGNORE_MANIFEST = os.environ.get("PARAMETRIC_IGNORE_MANIFEST", "0") == "1"
LIB_VERSION = os.environ.get("PARAMETRIC_LIBRARY_VERSION", "99.0.0")

# container name -> host port of the agent, to rewrite the app's agent URL
_AGENTS: dict[str, int] = {}


def _free_port(_worker_id=None, _base=None) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base_env() -> dict[str, str]:
    return {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}


class _Proc:
    """Enough of docker's Container for the client: name, status, reload, logs, exec_run."""

    def __init__(self, name, argv, env, log_file):
        self.name = name
        self._argv = argv
        self._env = env
        self._log_file = log_file
        self.status = "created"
        self._start()

    def _start(self):
        self._popen = subprocess.Popen(
            self._argv,
            env=self._env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.status = "running"

    def reload(self):
        if self._popen.poll() is not None:
            self.status = "exited"

    def logs(self):
        self._log_file.flush()
        with open(self._log_file.name, "rb") as f:
            return f.read()

    def exec_run(self, cmd, demux=False):
        out = (None, b"exec_run is not supported by the local harness")
        return (1, out) if demux else (1, b"exec_run is not supported by the local harness")

    def restart(self):
        self.stop()
        self._start()

    def stop(self, timeout=5):
        # the whole process group: `sh -c CMD` does not always exec CMD
        try:
            os.killpg(self._popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self._popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._popen.wait()
        self.status = "exited"


@contextlib.contextmanager
def _local_run(image, name, env, volumes, network, ports, log_file, command=None, extra_hosts=None, stop_timeout=1):
    env = {k: str(v) for k, v in env.items() if v is not None}
    if "test-agent" in image:
        (host_port,) = [p for c, p in ports.items() if c == "8126/tcp"]
        others = {c: p for c, p in ports.items() if c != "8126/tcp"}
        otlp_http = others.get(f"{env.get('OTLP_HTTP_PORT')}/tcp", _free_port())
        otlp_grpc = others.get(f"{env.get('OTLP_GRPC_PORT')}/tcp", _free_port())
        env.update(PORT=str(host_port), OTLP_HTTP_PORT=str(otlp_http), OTLP_GRPC_PORT=str(otlp_grpc))
        env["SNAPSHOT_DIR"] = os.path.join(os.getcwd(), "snapshots")
        env.pop("VCR_CASSETTES_DIRECTORY", None)
        argv = [AGENT_BIN, "--host", "127.0.0.1", "--port", str(host_port),
                "--otlp-http-port", str(otlp_http), "--otlp-grpc-port", str(otlp_grpc)]
        full_env = _base_env() | {"PYTHONUNBUFFERED": "1"} | env
        _AGENTS[name] = host_port
    else:
        (host_port,) = ports.values()
        agent = env.get("DD_AGENT_HOST")
        agent_port = _AGENTS.get(agent)
        if agent_port is not None:
            for k, v in list(env.items()):
                if agent in v:
                    v = v.replace(f"{agent}:8126", f"127.0.0.1:{agent_port}").replace(agent, "127.0.0.1")
                    env[k] = v
            if env.get("DD_TRACE_AGENT_PORT") == "8126":
                env["DD_TRACE_AGENT_PORT"] = str(agent_port)
        env["APM_TEST_CLIENT_SERVER_PORT"] = str(host_port)
        argv = ["/bin/sh", "-c", APP_CMD]
        full_env = _base_env() | env
        log_file.write(f"# local harness: {APP_CMD}\n# env: {json.dumps(env, sort_keys=True)}\n")
        log_file.flush()
    proc = _Proc(name, argv, full_env, log_file)
    try:
        yield proc
    finally:
        proc.stop(timeout=5)
        _AGENTS.pop(name, None)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    from utils.docker_fixtures import _test_agent, _core
    from utils.docker_fixtures._test_clients import _test_client_parametric, _core as clients_core
    from utils._context._scenarios import _docker_fixtures, parametric
    from utils._context.component_version import ComponentVersion
    from utils.docker_fixtures._test_agent_pool import WorkerAgentPool
    from utils.docker_fixtures._test_agent import DEFAULT_OTLP_HTTP_PORT, DEFAULT_OTLP_GRPC_PORT

    _test_agent.docker_run = _local_run
    _test_client_parametric.docker_run = _local_run
    _test_agent.get_host_port = _free_port
    _test_client_parametric.get_host_port = _free_port
    _test_agent.TestAgentFactory.pull = lambda self: None
    clients_core.TestClientFactory.command = property(lambda self: [])

    def configure(self, config):
        library = config.option.library
        self._test_client_factory = _test_client_parametric.ParametricTestClientFactory(
            library=library,
            dockerfile=f"utils/build/docker/{library}/parametric/Dockerfile",
            tag=f"{library}-test-client",
            container_name=f"{library}-test-client",
            container_volumes={},
            container_env={},
        )
        self._test_client_factory.configure(self.host_log_folder)
        self._test_agent_factory.configure(self.host_log_folder)
        self._library = ComponentVersion(library, LIB_VERSION)
        self.warmups.append(self._set_components)

    parametric.ParametricScenario.configure = configure

    @contextlib.contextmanager
    def _network(self, test_id):
        yield "local"

    _docker_fixtures.DockerFixturesScenario._get_docker_network = _network
    _docker_fixtures.DockerFixturesScenario._clean = lambda self: None

    def get_agent_pool(self, worker_id):
        if self._agent_pool is None:

            @contextlib.contextmanager
            def _creator(request, agent_env):
                with self._test_agent_factory.start_agent(
                    request=request,
                    worker_id=worker_id,
                    container_name=f"ddapm-test-agent-pool-{worker_id}",
                    docker_network="local",
                    agent_env=agent_env,
                    container_otlp_http_port=DEFAULT_OTLP_HTTP_PORT,
                    container_otlp_grpc_port=DEFAULT_OTLP_GRPC_PORT,
                ) as api:
                    yield api

            self._agent_pool = WorkerAgentPool(_creator)
        return self._agent_pool

    _docker_fixtures.DockerFixturesScenario.get_agent_pool = get_agent_pool

    if IGNORE_MANIFEST:
        from utils import manifest as manifest_mod

        manifest_mod.Manifest.get_declarations = lambda self, nodeid: []
