"""ft_launcher's command line: torchrun flags and spellings, --ft-* flags, hints for typos."""

from __future__ import annotations

import pytest

from launcher.cli.args import (
    FLAGS,
    UsageError,
    build_parser,
    ft_flag_names,
    launcher_flags,
    parse,
    peek_nproc,
    wants_fork_server,
)


def test_torchrun_flags_and_underscore_spellings():
    args = parse(["--nnodes=1:2", "--nproc_per_node", "4", "--rdzv_backend=c10d", "--rdzv-endpoint", "h:1",
                  "--max_restarts=3", "--monitor-interval=0.5", "--node_rank=1", "--master_addr=a",
                  "--master-port=5", "--rdzv-id=x", "--rdzv_conf=timeout=5", "--log_dir=/tmp/l", "-m", "pkg.mod",
                  "a=1"])
    assert (args.nnodes, args.nproc_per_node, args.rdzv_backend, args.rdzv_endpoint) == ("1:2", "4", "c10d", "h:1")
    assert (args.max_restarts, args.monitor_interval, args.node_rank, args.master_port) == (3, 0.5, 1, 5)
    assert args.module and args.training_script == "pkg.mod" and args.training_script_args == ["a=1"]


def test_torchrun_defaults():
    args = parse(["train.py"])
    assert (args.nnodes, args.nproc_per_node, args.max_restarts, args.rdzv_backend) == ("1:1", "1", 0, "static")
    assert args.term_timeout == 30.0 and not args.no_fork_server


def test_arguments_after_the_script_belong_to_the_script():
    args = parse(["--standalone", "train.py", "-m", "--max-restarts=9", "x=1"])
    assert args.training_script_args == ["-m", "--max-restarts=9", "x=1"]
    assert args.max_restarts == 0 and not args.module


@pytest.mark.parametrize("flag", ft_flag_names("rank_heartbeat_timeout"))
def test_ft_flag_spellings(flag):
    args = parse([f"{flag}=null", "train.py"])
    assert args.ft_flags == {"rank_heartbeat_timeout": "null"}
    assert args.ft_flag_spelling == {"rank_heartbeat_timeout": flag}


def test_every_schema_key_has_a_flag():
    from ft.shared.config import FIELD_NAMES

    options = {s for action in build_parser()._actions for s in action.option_strings}
    assert {f"--ft-{key.replace('_', '-')}" for key in FIELD_NAMES} <= options
    assert {"--ft-cfg-path", "--term-timeout", "--no-fork-server"} <= options


def test_unknown_ft_flag_names_the_closest():
    with pytest.raises(UsageError, match="did you mean --ft-initial-rank-heartbeat-timeout"):
        parse(["--ft-initial-rank-heartbeat-timout", "5", "train.py"])


def test_help_is_grouped():
    text = build_parser().format_help()
    assert "torchrun-compatible:" in text and "fault tolerance:" in text


def test_fork_server_decision_and_nproc_peek():
    assert wants_fork_server(["--nproc-per-node", "2", "train.py"])
    assert not wants_fork_server(["--no-python", "prog"])
    assert not wants_fork_server(["--help"])
    assert not wants_fork_server(["--nproc-per-node", "2"])
    assert peek_nproc(["--nnodes", "1", "--nproc_per_node=3", "x.py"]) == 3
    assert peek_nproc(["x.py", "--nproc-per-node=3"]) == 1


@pytest.mark.parametrize("flag", [f for f in FLAGS if f.switch], ids=lambda f: f.name)
def test_no_switch_swallows_the_script_name(flag):
    argv = [flag.spellings[-1], "train.py", "x=1"]
    [(name, value)] = launcher_flags(argv)
    assert name == flag.spellings[-1] and not value
    if flag.name not in ("module", "no-python"):  # those two change what the script is, not where it is
        assert parse(argv).training_script == "train.py"


@pytest.mark.parametrize("flag", [f for f in FLAGS if not f.switch], ids=lambda f: f.name)
def test_every_value_flag_takes_the_next_word(flag):
    value = {"nnodes": "1", "max-restarts": "2", "monitor-interval": "0.5", "node-rank": "0", "master-port": "5",
             "term-timeout": "3", "start-method": "fork", "signals-to-handle": "SIGTERM", "stop-signal": "SIGUSR1",
             "ft-cfg-path": "ft.yaml"}.get(flag.name, "v")
    argv = [flag.spellings[-1], value, "train.py"]
    assert launcher_flags(argv) == [(flag.spellings[-1], value)]
    assert parse(argv).training_script == "train.py"
