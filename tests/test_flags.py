"""Run options are defined once (a dataclass per run) and both the ``hgpt`` command and the Isaac Lab scripts take
them from there, in their own spelling, with the same defaults."""

import argparse
import dataclasses
from pathlib import Path

import pytest

from humanoid_gpt.experts.train import ExpertRun
from humanoid_gpt.flags import add_flags, from_args, option_fields, to_flags
from humanoid_gpt.students.distill import DistillRun


def _parser(cls, style, **kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_flags(p, cls, style, **kw)
    return p


def test_defaults_are_the_dataclass_defaults_in_both_spellings():
    hgpt = from_args(ExpertRun, _parser(ExpertRun, "hgpt").parse_args(["--task", "HGPT-Cluster-001"]))
    isaac = from_args(ExpertRun, _parser(ExpertRun, "isaaclab").parse_args(["--task", "HGPT-Cluster-001"]))
    assert hgpt == isaac == ExpertRun("HGPT-Cluster-001")


def test_flags_fill_fields_nested_configs_included():
    args = ["--registry", "r.json", "--num_envs", "8", "--max_iterations", "3", "--lr", "0.001"]
    args += ["--balance_temperature", "0.5"]
    run = from_args(DistillRun, _parser(DistillRun, "isaaclab").parse_args(args))
    assert run.registry == Path("r.json") and run.dagger.num_envs == 8 and run.dagger.max_iterations == 3
    assert run.dagger.lr == 0.001 and run.dagger.balance_temperature == 0.5
    assert run.dagger.seed == DistillRun(Path("r.json")).dagger.seed  # untouched options keep their defaults
    hgpt = _parser(ExpertRun, "hgpt").parse_args(["--task", "t", "--num-envs", "16", "--relative-actions"])
    run = from_args(ExpertRun, hgpt)
    assert run.num_envs == 16 and run.relative_actions and run.task_config().action_relative_to_reference


def test_every_scalar_field_is_an_option_and_choices_are_checked():
    names = {f.name for f, _, _ in option_fields(ExpertRun)}
    scalar = {f.name for f in dataclasses.fields(ExpertRun) if f.name != "tracking"}
    assert names == scalar
    with pytest.raises(argparse.ArgumentError):
        _parser(ExpertRun, "hgpt").parse_args(["--task", "t", "--backend", "bullet"])


@pytest.mark.parametrize("style", ["hgpt", "isaaclab"])
def test_to_flags_rebuilds_the_run_in_another_process(style):
    """What the main job passes to a distillation launched under torchrun must come back as the same run."""
    from humanoid_gpt.students.dagger import DaggerConfig

    run = DistillRun(
        Path("r.json"),
        manifest=Path("m.json"),
        student="mlp",
        context=8,
        dagger=DaggerConfig(num_envs=4, lr=1e-3, balance_temperature=0.0, max_minutes=2.5),
    )
    assert from_args(DistillRun, _parser(DistillRun, style).parse_args(to_flags(run, style))) == run
    expert = ExpertRun("HGPT-Cluster-003", relative_actions=True, randomization=False, num_envs=8)
    assert from_args(ExpertRun, _parser(ExpertRun, style).parse_args(to_flags(expert, style))) == expert


def test_help_texts_may_hold_percent_signs():
    """argparse formats help with %: a help text quoting a figure (SR 62.5%) must print, not crash --help."""
    text = _parser(ExpertRun, "hgpt").format_help()
    assert "--no-adaptive-sampling" in text and "%" in text
