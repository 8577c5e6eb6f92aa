"""The corpus filter: keep flat walking, drop a sunk clip with its frames, trim a floor stretch to the rest, catch
pops, non-flat ground, IK failures, label rules and object data, and report every reason with its frames.

Short slices of the shared LAFAN1-G1 clips (a few hundred frames each) keep the file fast."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from humanoid_gpt.governance.filter import analyse_clip, filter_clips, print_decisions
from humanoid_gpt.governance.filter_config import FilterConfig, FilterConfigError
from humanoid_gpt.governance.filter_decision import FilterDecision, format_ranges, ranges_of
from humanoid_gpt.governance.filter_labels import words
from humanoid_gpt.governance.quality import collision_model
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot import G1_JOINT_NAMES


@pytest.fixture(scope="module")
def cmodel(g1):
    return collision_model(g1)


def _load(lafan1_dir, g1, name: str, start: int, stop: int) -> MotionClip:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip(lafan1_dir / f"{name}.csv", g1=g1).slice(start, stop)


@pytest.fixture(scope="module")
def walk(lafan1_dir, g1) -> MotionClip:
    """20 s of flat walking (subject 2: no reason anywhere in the take)."""
    return _load(lafan1_dir, g1, "walk1_subject2", 0, 600)


def test_flat_walking_is_kept(walk, g1, cmodel):
    d = analyse_clip(walk, g1, model=cmodel)
    assert d.action == "keep" and d.reasons == [] and d.segments == [(0, walk.num_frames)]
    assert d.labels == ["walk"] and d.scores["frames"] == 600 and d.scores["penetration_max_mm"] < 30


def test_a_sunk_clip_is_dropped_for_penetration_with_its_frames(walk, g1, cmodel):
    sunk = walk.replace(root_pos=walk.root_pos - [0.0, 0.0, 0.06])
    d = analyse_clip(sunk, g1, model=cmodel)
    assert d.action == "drop" and d.segments == []
    pen = [r for r in d.reasons if r.code == "penetration"]
    assert any(r.whole_clip and "on average" in r.message for r in pen)  # the clip-wide gate
    per_frame = [r for r in pen if not r.whole_clip]
    assert per_frame and per_frame[0].num_frames > 0.9 * sunk.num_frames
    assert "below the floor" in per_frame[0].describe() and "frames 0-" in per_frame[0].describe()


def test_a_floor_stretch_is_trimmed_to_the_rest(lafan1_dir, g1, cmodel):
    """fallAndGetUp3: standing, then hands and knees on the floor (frames ~272-314), then getting up."""
    clip = _load(lafan1_dir, g1, "fallAndGetUp3_subject1", 0, 420)
    d = analyse_clip(clip, g1, model=cmodel)
    assert d.action == "trim"
    support = next(r for r in d.reasons if r.code == "support")
    assert "hands" in support.message or "knees" in support.message
    floor = np.zeros(clip.num_frames, dtype=bool)
    for a, b in support.frames:
        floor[a:b] = True
    assert floor[280:310].all() and not floor[:250].any()
    for a, b in d.segments:  # nothing kept touches the floor stretch, and every kept piece is long enough
        assert not floor[a:b].any() and (b - a) / clip.fps >= FilterConfig().min_segment_seconds
    assert d.segments[0][0] == 0 and 240 < d.segments[0][1] <= 272
    assert d.kept_frames < clip.num_frames


def test_a_pop_is_cut_out(walk, g1, cmodel):
    pop = walk.replace(joint_pos=walk.joint_pos.copy())
    j = G1_JOINT_NAMES.index("right_shoulder_pitch_joint")
    pop.joint_pos[300, j] += 1.5  # one frame of a mocap glitch
    d = analyse_clip(pop, g1, model=cmodel)
    codes = set(d.codes)
    assert d.action == "trim" and {"jerk", "joint_velocity"} <= codes
    jerk = next(r for r in d.reasons if r.code == "jerk")
    assert all(a >= 296 and b <= 304 for a, b in jerk.frames)
    assert [s for s in d.segments if s[0] <= 300 < s[1]] == []  # the pop itself is not kept


def _standing(g1, frames: int, fps: float = 30.0) -> MotionClip:
    q = np.tile(g1.default_joint_pos, (frames, 1))
    root = np.tile([0.0, 0.0, g1.default_root_height], (frames, 1))
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (frames, 1))
    return MotionClip("stand", fps, root, quat, q, {"tags": ["stand"]})


def test_a_foot_resting_on_a_box_is_non_flat_ground(g1, cmodel):
    """Standing, then the left foot raised still and level (as on a step) for 3 s, then standing again."""
    clip = _standing(g1, 300)
    hip, knee, ankle = (G1_JOINT_NAMES.index(f"left_{j}_joint") for j in ("hip_pitch", "knee", "ankle_pitch"))
    ramp = np.clip((np.arange(300) - 90) / 15.0, 0, 1) * np.clip((225 - np.arange(300)) / 15.0, 0, 1)
    clip.joint_pos[:, hip] -= 0.7 * ramp
    clip.joint_pos[:, knee] += 1.4 * ramp
    clip.joint_pos[:, ankle] -= 0.7 * ramp  # keeps the sole level
    d = analyse_clip(clip, g1, model=cmodel)
    nonflat = next(r for r in d.reasons if r.code == "non_flat_ground")
    covered = sum(min(b, 200) - max(a, 120) for a, b in nonflat.frames if b > 120 and a < 200)
    assert covered >= 70 and all(a >= 100 and b <= 215 for a, b in nonflat.frames)
    assert d.action == "trim" and all(b <= 100 or a >= 215 for a, b in d.segments)


def test_frames_the_retargeter_flagged_are_cut(walk, g1, cmodel):
    residual = np.full(walk.num_frames, 20.0)
    residual[400:430] = 180.0
    prov = {
        **walk.provenance,
        "retarget": {"status": "flagged", "residual_mm": residual.tolist(), "report": {"threshold_mm": 100.0}},
    }
    d = analyse_clip(walk.replace(provenance=prov), g1, model=cmodel)
    ik = next(r for r in d.reasons if r.code == "retarget")
    assert ik.frames == [(400, 430)] and "180 mm" in ik.message
    assert d.action == "trim" and d.segments[0] == (0, 394)


def test_label_rules(walk, g1, cmodel):
    assert words("fallAndGetUp3_subject1") == ["fall", "and", "get", "up", "subject"]
    sit = walk.replace(name="sit_on_chair_02")
    d = analyse_clip(sit, g1, model=cmodel)
    assert d.action == "drop" and {"label:sitting", "objects"} <= set(d.codes)
    assert "'chair, sit'" in next(r for r in d.reasons if r.code == "label:sitting").message
    caption = walk.replace(provenance={**walk.provenance, "caption": "A person climbs the stairs slowly"})
    assert {"label:climbing", "label:stairs"} <= set(analyse_clip(caption, g1, model=cmodel).codes)
    # Whole words only: "StepTouch", "boxing" and "Fence" trip no rule; a source's own labels count.
    for name in ("J_Dance0_StepTouch", "boxing_round", "B_Fence2"):
        assert analyse_clip(walk.replace(name=name), g1, model=cmodel).action == "keep"
    assert "label:swimming" in analyse_clip(walk, g1, extra_labels=["swim"], model=cmodel).codes
    # Configurable: a custom rule, and none at all.
    custom = FilterConfig(label_rules={"dancing": r"danc\w*"})
    assert analyse_clip(walk.replace(name="dance_1"), g1, custom, model=cmodel).codes == ["label:dancing"]
    assert analyse_clip(sit, g1, FilterConfig(label_rules={}, drop_objects=False), model=cmodel).action == "keep"


def test_object_data_drops_the_clip(walk, g1, tmp_path, cmodel):
    with_object = walk.replace(provenance={**walk.provenance, "has_objects": True, "object_keys": ["object_pos_w"]})
    d = analyse_clip(with_object, g1, model=cmodel)
    assert d.action == "drop" and d.codes == ["objects"] and "object_pos_w" in d.reasons[0].message
    # The same from a file: a holosoma whole-body-tracking NPZ that carries an object's trajectory.
    n = 90
    np.savez(
        tmp_path / "carry_wbt.npz",
        fps=np.array([30.0]),
        joint_pos=np.concatenate([walk.root_pos[:n], walk.root_quat[:n], walk.joint_pos[:n]], axis=1),
        joint_names=np.array(G1_JOINT_NAMES),
        object_pos_w=np.tile([1.0, 0.0, 0.4], (n, 1)),
    )
    (d,) = filter_clips([tmp_path / "carry_wbt.npz"], g1=g1)
    assert d.action == "drop" and "objects" in d.codes


def test_filter_files_table_and_json(walk, g1, tmp_path, capsys):
    good = tmp_path / "walk1_subject2.csv"
    np.savetxt(good, walk.slice(0, 120).qpos()[:, [0, 1, 2, 4, 5, 6, 3, *range(7, 36)]], delimiter=",")
    (tmp_path / "broken.csv").write_text("1,2,3\n")
    decisions = filter_clips([tmp_path], g1=g1)
    by_name = {d.name: d for d in decisions}
    assert by_name["walk1_subject2"].action == "keep"
    assert by_name["broken"].action == "drop" and by_name["broken"].codes in (["unreadable"], ["invalid"])
    assert "broken.csv" in by_name["broken"].reasons[0].message
    text = json.dumps([d.to_dict() for d in decisions])
    back = [FilterDecision.from_dict(x) for x in json.loads(text)]
    assert [b.to_dict() for b in back] == [d.to_dict() for d in decisions]
    print_decisions(decisions)
    out = capsys.readouterr().out
    assert "walk1_subject2" in out and "1 keep, 0 trim, 1 drop" in out


def test_helpers_and_config_errors():
    mask = np.zeros(20, dtype=bool)
    mask[[3, 4, 5, 10, 17, 18]] = True
    assert ranges_of(mask) == [(3, 6), (10, 11), (17, 19)] and ranges_of(mask, 2) == [(3, 6), (17, 19)]
    assert format_ranges([(3, 6), (10, 11)]) == "3-5, 10"
    assert FilterConfig.from_dict({"support_height": {"hands": 0.1}}).support_height["knees"] == 0.05
    with pytest.raises(FilterConfigError, match="unknown filter setting.*penetration_mmm"):
        FilterConfig.from_dict({"penetration_mmm": 3})
    with pytest.raises(FilterConfigError, match="support_height: unknown group"):
        FilterConfig.from_dict({"support_height": {"tail": 0.1}})
    with pytest.raises(FilterConfigError, match="label_rules.bad"):
        FilterConfig.from_dict({"label_rules": {"bad": "(unclosed"}})
