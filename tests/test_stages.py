"""Pipeline stages: done once per key, rebuilt (saying why) when inputs change, resumed after a crash, published
whole or not at all."""

import json

import pytest

from humanoid_gpt.jobs.stages import Stage, read_marker, run_stage


def counting_stage(calls: list, key: dict, fail_at: int | None = None) -> Stage:
    def build(work):
        calls.append(sorted(p.name for p in work.iterdir()))
        for step in range(3):  # a resumable build: each step leaves a file, later attempts skip finished steps
            part = work / f"part{step}.txt"
            if part.exists():
                continue
            if step == fail_at:
                raise KeyboardInterrupt  # stands for a kill in the middle of the stage
            part.write_text(str(step))
        return {"parts": 3}

    return Stage("corpus", key, build)


def test_a_finished_stage_is_skipped_and_a_changed_one_rebuilt(tmp_path):
    calls: list = []
    first = run_stage(tmp_path, counting_stage(calls, {"clips": 4, "cfg": {"fps": 50}}), log=lambda m: None)
    assert not first.skipped and first.summary == {"parts": 3} and first.folder == tmp_path / "corpus"
    again = run_stage(tmp_path, counting_stage(calls, {"clips": 4, "cfg": {"fps": 50}}), log=lambda m: None)
    assert again.skipped and len(calls) == 1
    changed = run_stage(tmp_path, counting_stage(calls, {"clips": 4, "cfg": {"fps": 30}}), log=lambda m: None)
    assert not changed.skipped and "cfg.fps" in changed.reason and len(calls) == 2
    assert read_marker(tmp_path / "corpus")["key"]["cfg"]["fps"] == 30


def test_an_interrupted_stage_resumes_and_is_only_published_whole(tmp_path):
    calls: list = []
    with pytest.raises(KeyboardInterrupt):
        run_stage(tmp_path, counting_stage(calls, {"k": 1}, fail_at=2), log=lambda m: None)
    assert not (tmp_path / "corpus").exists()  # nothing that looks done
    assert not json.loads((tmp_path / "corpus.work" / "stage.json").read_text())["finished"]
    result = run_stage(tmp_path, counting_stage(calls, {"k": 1}), log=lambda m: None)
    assert "resuming" in result.reason and calls[-1] == ["part0.txt", "part1.txt", "stage.json"]
    assert sorted(p.name for p in result.folder.iterdir()) == ["part0.txt", "part1.txt", "part2.txt", "stage.json"]
    assert not (tmp_path / "corpus.work").exists()


def test_an_interrupted_attempt_of_another_key_is_discarded(tmp_path):
    calls: list = []
    with pytest.raises(KeyboardInterrupt):
        run_stage(tmp_path, counting_stage(calls, {"k": 1}, fail_at=1), log=lambda m: None)
    result = run_stage(tmp_path, counting_stage(calls, {"k": 2}), log=lambda m: None)
    assert "resuming" not in result.reason and calls[-1] == ["stage.json"]


def test_a_full_disk_is_a_clear_error_and_leaves_the_stage_unfinished(tmp_path):
    import errno

    from humanoid_gpt.errors import HGPTError

    def build(work):
        (work / "part0.txt").write_text("0")
        raise OSError(errno.ENOSPC, "No space left on device", str(work / "part1.txt"))

    with pytest.raises(HGPTError, match=r"\[corpus\] the disk is full .*part1.txt.*free space"):
        run_stage(tmp_path, Stage("corpus", {"a": 1}, build), log=lambda m: None)
    assert not (tmp_path / "corpus").exists()  # nothing published, nothing marked done
    assert (tmp_path / "corpus.work" / "part0.txt").is_file()  # finished parts kept for the rerun
    assert read_marker(tmp_path / "corpus.work")["finished"] is False
