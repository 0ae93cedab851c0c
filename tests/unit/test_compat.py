"""Each private name in launcher/compat.py exists on the installed torch and Hydra with the shape we use.

A new torch release that moves one of them fails here, by name, instead of in twenty integration tests.
"""

from __future__ import annotations

import inspect
import re
import signal
import sys
import types
from pathlib import Path

import pytest
import torch.distributed.elastic.agent.server.local_elastic_agent as local_agent
from torch.distributed.elastic.agent.server.api import SimpleElasticAgent, WorkerSpec
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
from torch.distributed.elastic.multiprocessing.api import PContext, SignalException

from launcher import compat

LAUNCHER = Path(compat.__file__).parent


def _agent(tmp_path: Path, shutdown_timeout: float = 7) -> compat.CompatibleAgent:
    spec = WorkerSpec(role="test", local_world_size=1, rdzv_handler=types.SimpleNamespace(), entrypoint="x")
    return compat.CompatibleAgent(spec, DefaultLogsSpecs(log_dir=str(tmp_path)), shutdown_timeout=shutdown_timeout)


def test_every_private_name_is_listed_and_only_compat_uses_them() -> None:
    assert len(compat.PRIVATE_NAMES) >= 10
    private_uses = (r"\._pcontext\b", r"\._remaining_restarts\b", r"\b_terminate_process_handler\b",
                    r"\b_parse_rendezvous_config\b", r"\bhydra\._internal\b", r"\blocal_elastic_agent\b",
                    r"\bSubprocessHandler\b", r"\bsuper\(\)\._shutdown\b",
                    r"\bsuper\(\)\._stop_workers\b")
    plugin = sorted((LAUNCHER.parent / "hydra_plugins").rglob("*.py"))  # the Hydra plugin too
    for path in sorted(LAUNCHER.rglob("*.py")) + plugin:
        if path.name == "compat.py":
            continue
        text = path.read_text()
        found = [name for name in private_uses if re.search(name, text)]
        assert not found, f"{path.name} uses {found}: go through launcher/compat.py"


def test_the_process_group_map_a_forked_worker_keeps_is_there() -> None:
    from torch.distributed import distributed_c10d as c10d

    assert isinstance(c10d._world.pg_map, dict)
    assert hasattr(c10d.GroupMember, "WORLD")


def test_a_one_node_rendezvous_skips_only_the_random_skew(monkeypatch) -> None:
    import time

    import torch.distributed.elastic.rendezvous.dynamic_rendezvous as dynamic

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    original = dynamic._delay
    with compat.rendezvous_without_random_skew():
        dynamic._delay(seconds=(0, 0.3))  # the skew before a join in round 0
        dynamic._delay(seconds=1)  # the poll while waiting for other nodes
    assert slept == [1]
    assert dynamic._delay is original


def test_start_processes_is_a_module_global_the_agent_calls() -> None:
    assert callable(local_agent.start_processes)
    source = inspect.getsource(local_agent.LocalElasticAgent._start_workers)
    assert "start_processes(" in source
    # Our replacement takes these by keyword: each must be what elastic passes.
    call = source[source.index("start_processes("):]
    for keyword in ("name=", "entrypoint=", "args=", "envs=", "logs_specs=", "log_line_prefixes="):
        assert keyword in call, keyword


def test_processes_started_by_swaps_and_restores(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    original = local_agent.start_processes
    with agent.processes_started_by(len):
        assert local_agent.start_processes is len
    assert local_agent.start_processes is original


def test_agent_attributes_we_read_exist_after_init(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    assert agent.worker_context is None
    assert agent.restarts_left == 3  # WorkerSpec's default max_restarts
    agent.restarts_left = 0
    assert agent._remaining_restarts == 0


def test_shutdown_timeout_reaches_elastic_where_it_takes_one(tmp_path: Path) -> None:
    agent = _agent(tmp_path, shutdown_timeout=7)
    takes = "shutdown_timeout" in inspect.signature(local_agent.LocalElasticAgent.__init__).parameters
    assert compat.AGENT_TAKES_SHUTDOWN_TIMEOUT is takes
    if takes:
        assert agent._shutdown_timeout == 7


@pytest.mark.parametrize("call", ["positional", "keyword", "none"])
def test_shutdown_accepts_every_calling_convention(tmp_path: Path, call: str) -> None:
    agent = _agent(tmp_path)
    seen = []
    agent.shutdown_workers = lambda sig, timeout: seen.append((sig, timeout))  # type: ignore[method-assign]
    {"positional": lambda: agent._shutdown(signal.SIGINT),
     "keyword": lambda: agent._shutdown(signal.SIGINT, timeout=5),
     "none": lambda: agent._shutdown()}[call]()
    assert seen and seen[0][0] in (signal.SIGINT, signal.SIGTERM)
    # And what elastic itself calls: _shutdown(sig) or _shutdown(sig, timeout=...).
    source = inspect.getsource(SimpleElasticAgent.run)
    assert "self._shutdown(" in source


def test_elastic_shutdown_runs_on_this_release_and_leaves_the_rendezvous_open(tmp_path: Path) -> None:
    params = inspect.signature(local_agent.LocalElasticAgent._shutdown).parameters
    assert list(params)[:2] == ["self", "death_sig"]
    assert set(params) <= {"self", "death_sig", "timeout", "is_restart"}, f"new _shutdown parameters: {params}"
    assert compat.SHUTDOWN_TAKES_TIMEOUT is ("timeout" in params)
    assert compat.SHUTDOWN_TAKES_IS_RESTART is ("is_restart" in params)
    agent = _agent(tmp_path)
    closed = []
    agent._rdzv_handler = types.SimpleNamespace(shutdown=lambda: closed.append(True))
    agent.elastic_shutdown(signal.SIGTERM, 3)  # no workers: must simply return
    assert not closed, "the job, not the agent, decides when the rendezvous closes"


@pytest.mark.parametrize("kwargs", [{}, {"is_restart": True}])
def test_stop_workers_accepts_every_calling_convention(tmp_path: Path, kwargs: dict) -> None:
    agent = _agent(tmp_path)
    seen = []
    agent.stop_workers = seen.append  # type: ignore[method-assign]
    agent._stop_workers("group", **kwargs)
    assert seen == ["group"]
    assert "_stop_workers(" in inspect.getsource(SimpleElasticAgent._restart_workers)


def test_pcontext_abstract_methods_and_constructor() -> None:
    assert PContext.__abstractmethods__ == {"_start", "_poll", "_close", "pids"}
    params = inspect.signature(PContext.__init__).parameters
    for name in ("name", "entrypoint", "args", "envs", "logs_specs", "log_line_prefixes"):
        assert name in params, name
    assert list(inspect.signature(PContext.close).parameters)[:3] == ["self", "death_sig", "timeout"]


def test_session_handler_starts_in_its_own_session_and_closes_logs(tmp_path: Path) -> None:
    ran = []
    out = tmp_path / "out.txt"
    handler = compat.SessionSubprocessHandler(
        preexec=lambda: ran.append(1), entrypoint=sys.executable,
        args=("-c", "import os; print(os.getsid(0) == os.getpid())"), env={}, stdout=str(out), stderr=None,
        local_rank_id=0,
    )
    assert handler.proc.wait(timeout=60) == 0
    handler.close_log_files()
    assert out.read_text().strip() == "True"


def test_terminate_handler_raises_signal_exception() -> None:
    with pytest.raises(SignalException) as info:
        compat.terminate_process_handler(signal.SIGTERM, None)
    assert info.value.sigval == signal.SIGTERM


def test_rendezvous_config_parser() -> None:
    assert compat.parse_rendezvous_config("timeout=60,join_timeout=5") == {"timeout": "60", "join_timeout": "5"}
    assert compat.parse_rendezvous_config("") == {}


def test_hydra_basic_sweeper_split() -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(["a=1,2", "b=x"])
    jobs = [job for batch in compat.split_sweep(parsed) for job in batch]
    assert jobs == [["a=1", "b=x"], ["a=2", "b=x"]]


def test_installed_torch_is_in_the_tested_range_and_others_are_named() -> None:
    import torch

    assert compat.untested_torch(torch.__version__) is None
    assert compat.untested_torch("2.6.0+cu124") is None and compat.untested_torch("2.15.0") is None
    assert "torch 2.16.0 is outside" in compat.untested_torch("2.16.0")
    assert "2.6 to 2.15" in compat.untested_torch("2.5.1")
    assert compat.untested_torch("weird") is None
