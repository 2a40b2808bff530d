"""LSP positions in each position encoding."""

import pytest

from osslsp.documents import PositionError, offset_at, position_at

TEXT = 'greeting = "héllo wörld 🎉 x"\nnext'


@pytest.mark.parametrize("encoding, column", [("utf-16", 26), ("utf-8", 30), ("utf-32", 25)])
def test_a_column_after_non_ascii_text_lands_on_the_same_character(encoding, column):
    offset = TEXT.index(" x")
    assert offset_at(TEXT, 0, column, encoding) == offset
    assert position_at(TEXT, offset, encoding) == (0, column)


def test_a_column_past_the_end_of_a_line_is_clamped():
    assert offset_at(TEXT, 1, 99) == len(TEXT)


def test_a_line_past_the_end_is_an_error():
    with pytest.raises(PositionError, match="past the end"):
        offset_at(TEXT, 5, 0)
