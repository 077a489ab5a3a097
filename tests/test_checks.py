"""quarf_hf.models.checks: the value checks and the user-error types every check raises."""

import pytest

from quarf_hf.models.checks import (InputError, InputTypeError, check_choice, check_groups, check_int,
                                    check_number, check_probability, check_shape, check_type)


@pytest.mark.parametrize("value", [0, -1, 1.0, "2", True, None])
def test_check_int_refuses_non_positive_and_non_integers(value):
    with pytest.raises(InputError, match=r"^batch_size: expected an integer >= 1, found "):
        check_int("batch_size", value)


def test_check_int_bounds_and_return():
    assert check_int("n", 0, minimum=0) == 0
    assert check_int("n", 3, 0, 3) == 3
    with pytest.raises(InputError, match="from 0 to 3, found 4"):
        check_int("n", 4, 0, 3)


def test_check_number_reads_yaml_strings_and_refuses_nan():
    assert check_number("learning_rate", "6e-4", 0, exclusive=True) == pytest.approx(6e-4)
    for bad in ("abc", float("nan"), float("inf"), None, False):
        with pytest.raises(InputError, match="^learning_rate: expected a finite number"):
            check_number("learning_rate", bad)
    with pytest.raises(InputError, match="^learning_rate: expected a number > 0, found 0"):
        check_number("learning_rate", 0, 0, exclusive=True)


def test_check_probability_choice_type_shape():
    assert check_probability("p", 1) == 1.0
    with pytest.raises(InputError, match=r"^p: expected a number >= 0 and <= 1, found 1.5"):
        check_probability("p", 1.5)
    with pytest.raises(InputError, match="^mode: expected one of soft, hard, found 'medium'"):
        check_choice("mode", "medium", ["soft", "hard"])
    with pytest.raises(TypeError, match="^images: expected a tensor, found list"):
        check_type("images", [], (int,), "a tensor")
    check_shape("x", (2, 3, 8, 8), (None, 3, None, None))
    with pytest.raises(InputError, match=r"^x: expected shape \(\*, 3, \*, \*\), found \(2, 1, 8, 8\)"):
        check_shape("x", (2, 1, 8, 8), (None, 3, None, None))


def test_check_groups_is_the_one_channel_rule():
    assert check_groups("block.num_groups", 16, 4) == 4
    with pytest.raises(InputError, match=r"^block.num_groups: expected a divisor of channels \(16\), found 3$"):
        check_groups("block.num_groups", 16, 3)
    with pytest.raises(InputError, match=r"^in_channels: expected an integer >= 1"):
        check_groups("num_groups", 0, 1, what="in_channels")
    with pytest.raises(InputError, match=r"^num_groups: expected an integer >= 1, found 0"):
        check_groups("num_groups", 16, 0)


def test_error_types_are_value_and_type_errors():
    assert issubclass(InputError, ValueError) and not issubclass(InputError, TypeError)
    assert issubclass(InputTypeError, InputError) and issubclass(InputTypeError, TypeError)
