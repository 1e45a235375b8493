import pytest

from resilia import pipeline


@pytest.mark.parametrize("evaluation", [{}, None, {"month": "2026-03"}, "2026-03"])
def test_publish_refuses_what_is_not_an_evaluation(tmp_path, evaluation):
    with pytest.raises(ValueError, match="not an evaluation"):
        pipeline.publish(tmp_path, evaluation)
    assert not (tmp_path / "decisions").exists()


@pytest.mark.parametrize("month", ["2026-13", "26-03", None, 202603, "2026-3"])
def test_a_month_is_written_yyyy_mm(month):
    with pytest.raises(ValueError, match="YYYY-MM"):
        pipeline.check_month(month)
