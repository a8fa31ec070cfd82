import numpy as np
import pytest

from landcover_plugin.metrics import confusion_matrix, scores


def test_against_a_hand_computed_confusion_matrix():
    ref = np.array([0, 0, 0, 1, 1, 2, 2, 2, 255, 1])
    pred = np.array([0, 0, 1, 1, 2, 2, 2, 0, 2, 1])
    cm = confusion_matrix(ref, pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 1], [1, 0, 2]]
    s = scores(cm)
    assert s["overall_accuracy"] == pytest.approx(6 / 9)
    # p_e = (3*3 + 3*3 + 3*3) / 81 = 1/3 → kappa = (2/3 - 1/3) / (2/3) = 0.5
    assert s["kappa"] == pytest.approx(0.5)
    assert s["iou"] == pytest.approx([2 / 4, 2 / 4, 2 / 4])
    assert s["precision"] == pytest.approx([2 / 3, 2 / 3, 2 / 3]) and s["recall"] == pytest.approx([2 / 3] * 3)
    assert s["f1"] == pytest.approx([2 / 3] * 3) and s["miou"] == pytest.approx(0.5)


def test_absent_classes_do_not_count_in_miou():
    cm = np.array([[5, 0, 0], [1, 3, 0], [0, 0, 0]])
    s = scores(cm)
    assert s["present"] == [True, True, False] and np.isnan(s["iou"][2])
    assert s["miou"] == pytest.approx((5 / 6 + 3 / 4) / 2)
