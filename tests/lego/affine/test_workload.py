"""lego/affine/workload.py: the affine index parser and the workload checks."""
import pytest

from lego.affine.workload import parse_affine
from lego.errors import LegoError

ITS = ("h", "w", "r")


@pytest.mark.parametrize("expr,coeffs,const", [
    ("h + r", (1, 0, 1), 0), ("2*h + r - 1", (2, 0, 1), -1), ("w*3", (0, 3, 0), 0), ("-h + 4", (-1, 0, 0), 4),
    (5, (0, 0, 0), 5), ("h - h + 2", (0, 0, 0), 2), ("3*r + 2*r", (0, 0, 5), 0)])
def test_parse_affine(expr, coeffs, const):
    a = parse_affine(expr, ITS, "x")
    assert a.coeffs == coeffs and a.const == const


@pytest.mark.parametrize("expr,why", [
    ("h*w", "is not affine"), ("h/2", "is not affine"), ("h % 4", "is not affine"), ("q + 1", "unknown iterator 'q'"),
    ("h +", "is not affine"), ("", "is not an affine index expression"), ("h**2", "is not affine")])
def test_parse_affine_rejects_naming_the_field(expr, why):
    with pytest.raises(LegoError, match=r"^tensors\.X\.index\[0\]: ") as e:
        parse_affine(expr, ITS, "tensors.X.index[0]")
    assert why in str(e.value)
