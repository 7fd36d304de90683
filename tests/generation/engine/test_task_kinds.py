import pytest

from generation.engine import task_kinds
from generation.engine.task_kinds import TASKS, TaskError, check_model_kind, resolve_strength


def test_every_task_the_portal_offers_is_known_to_the_engine():
    from generation.models import ModelKind, Task

    assert set(TASKS) == set(Task.values)
    for info in TASKS.values():
        assert set(info.kinds) <= set(ModelKind.values)


def test_the_task_table_imports_without_torch():
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, generation.engine.task_kinds; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])


@pytest.mark.parametrize("task", ["sky_replacement", "set_extension", "background_fill", "atmosphere"])
def test_a_show_model_can_inpaint_and_haze(task):
    check_model_kind(task, "show_model")


def test_a_show_model_is_refused_a_time_of_day_with_the_reason():
    with pytest.raises(TaskError, match="ignores prompts.*inpainting or img2img"):
        check_model_kind("time_of_day", "show_model", "demo-sky")


@pytest.mark.parametrize("task", ["sky_replacement", "set_extension", "background_fill"])
def test_an_img2img_model_cannot_generate_a_region_from_nothing(task):
    with pytest.raises(TaskError, match="img2img model"):
        check_model_kind(task, "img2img")


def test_strength_defaults_per_task_and_is_range_checked():
    assert resolve_strength("time_of_day", None) == 0.45
    assert resolve_strength("atmosphere", None) == 0.5
    assert resolve_strength("sky_replacement", None) == 1.0
    assert resolve_strength("time_of_day", 0.3) == 0.3
    with pytest.raises(TaskError, match="0.2–0.8"):
        resolve_strength("time_of_day", 0.95)
    with pytest.raises(TaskError, match="whole region"):
        resolve_strength("set_extension", 0.5)
    with pytest.raises(TaskError, match="unknown task"):
        task_kinds.task_info("sky_painting")
