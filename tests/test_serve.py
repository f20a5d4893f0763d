"""`stylecast serve`'s --rt-priority: checked before serving, passed to the engine the way
STYLECAST_RT_PRIORITY is."""

from __future__ import annotations

import pytest

from stylecast.cli import EXIT_INPUT, build_parser, main
from stylecast.cli.serve import rt_priority_option
from stylecast.engine.errors import InputError
from stylecast.engine.scheduler import RT_PRIORITY_ENV


def test_rt_priority_is_an_option_of_serve():
    args = build_parser().parse_args(["serve", "--rt-priority", "10"])
    assert args.rt_priority == 10
    assert build_parser().parse_args(["serve"]).rt_priority is None


def test_rt_priority_option_sets_what_the_engine_reads(monkeypatch):
    monkeypatch.delenv(RT_PRIORITY_ENV, raising=False)
    assert rt_priority_option(None) is None
    monkeypatch.setenv(RT_PRIORITY_ENV, "7")
    assert rt_priority_option(None) == 7  # the environment's, when no option is given
    assert rt_priority_option(10) == 10
    import os

    assert os.environ[RT_PRIORITY_ENV] == "10"
    for bad in (0, 99, -3):
        with pytest.raises(InputError, match=f"--rt-priority {bad}: use"):
            rt_priority_option(bad)


def test_a_bad_rt_priority_exits_with_the_input_code(monkeypatch, capsys):
    monkeypatch.delenv(RT_PRIORITY_ENV, raising=False)
    assert main(["serve", "--rt-priority", "0", "--port", "1"]) == EXIT_INPUT
    assert "--rt-priority 0" in capsys.readouterr().err
