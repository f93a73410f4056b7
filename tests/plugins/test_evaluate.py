"""The evaluate stage, checked against figures computed by hand."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from pipeline.artifacts import Dataset, Saveable, Split
from pipeline.errors import DataError
from pipeline.spec import StageContext
from plugins.evaluate import Evaluate, Metrics

# Six samples, three classes. Class 2 is never predicted; class 1 is predicted for a class-0 sample.
Y_TRUE = np.array([0, 0, 1, 1, 2, 0])
Y_PRED = np.array([0, 1, 1, 1, 1, 0])
# Hand-built confusion matrix, rows true, columns predicted.
CONFUSION = [[2, 1, 0],
             [0, 2, 0],
             [0, 1, 0]]
# precision: tp / predicted = 2/2, 2/4, 0 (never predicted: 0, not NaN)
# recall:    tp / support   = 2/3, 2/2, 0/1
PRECISION = [1.0, 0.5, 0.0]
RECALL = [2 / 3, 1.0, 0.0]
F1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 2 * 0.5 * 1 / 1.5, 0.0]  # 0.8, 2/3, 0


class FixedModel:
    """A stand-in for the trained model: returns fixed probabilities and a fixed loss."""

    def __init__(self, predictions, classes=3, loss=0.25):
        self.proba = np.full((len(predictions), classes), 0.1)
        self.proba[np.arange(len(predictions)), predictions] = 0.8
        self.loss_value = loss
        self.seen = []

    def predict_proba(self, x):
        return self.proba

    def loss(self, x, y):
        self.seen.append(y)
        return self.loss_value


def dataset(y=Y_TRUE, class_names=("cat", "dog", "eel")) -> Dataset:
    return Dataset(splits={"test": Split(np.zeros((len(y), 2)), y),
                           "train": Split(np.zeros((1, 2)), np.zeros(1, np.int64))},
                   class_names=class_names, name="toy")


def run(stage=None, data=None, model=None) -> Metrics:
    out = (stage or Evaluate()).run({"data": data or dataset(), "model": model or FixedModel(Y_PRED)},
                                    StageContext(seed=0))
    assert list(out) == ["metrics"]
    return out["metrics"]


def test_metrics_match_hand_computed_figures():
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        report = run().to_dict()
    assert report["split"] == "test" and report["n"] == 6
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["loss"] == 0.25
    assert report["confusion_matrix"] == CONFUSION
    per_class = report["per_class"]
    assert [c["class"] for c in per_class] == [0, 1, 2]
    assert [c["name"] for c in per_class] == ["cat", "dog", "eel"]
    assert [c["support"] for c in per_class] == [3, 2, 1]
    assert [c["precision"] for c in per_class] == pytest.approx(PRECISION)
    assert [c["recall"] for c in per_class] == pytest.approx(RECALL)
    assert [c["f1"] for c in per_class] == pytest.approx(F1)
    assert report["macro_f1"] == pytest.approx(sum(F1) / 3)
    assert report["macro_precision"] == pytest.approx(0.5)
    assert report["weighted_f1"] == pytest.approx((3 * F1[0] + 2 * F1[1]) / 6)


def test_one_hot_targets_give_the_same_figures_and_reach_the_loss():
    model = FixedModel(Y_PRED)
    one_hot = np.eye(3, dtype=np.float32)[Y_TRUE]
    report = run(data=dataset(one_hot), model=model).to_dict()
    assert report["confusion_matrix"] == CONFUSION
    assert model.seen[0] is one_hot  # the loss sees the targets as the dataset holds them


def test_macro_average_skips_classes_absent_from_split_and_predictions():
    # Class 3 neither occurs nor is predicted: it does not drag the macro F1 down.
    report = run(model=FixedModel(Y_PRED, classes=4), data=dataset(class_names=None)).to_dict()
    assert report["macro_f1"] == pytest.approx(sum(F1) / 3)
    assert report["per_class"][3] == {"class": 3, "name": "3", "precision": 0.0, "recall": 0.0,
                                      "f1": 0.0, "support": 0}


def test_perfect_and_single_class_predictions_have_no_nan():
    report = run(model=FixedModel(np.zeros(6, dtype=int))).to_dict()
    assert report["accuracy"] == pytest.approx(0.5)
    assert all(np.isfinite([c["precision"], c["recall"], c["f1"]]).all() for c in report["per_class"])
    assert run(model=FixedModel(Y_TRUE)).to_dict()["macro_f1"] == 1.0


def test_saves_metrics_json_and_summarises(tmp_path):
    metrics = run()
    assert isinstance(metrics, Saveable)
    assert metrics.save(tmp_path) == ["metrics.json"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert {"split", "accuracy", "loss", "per_class", "confusion_matrix", "macro_f1"} <= set(saved)
    assert saved == json.loads(json.dumps(metrics.to_dict()))
    summary = metrics.summary()
    assert "\n" not in summary and "test" in summary and "0.6667" in summary and "0.2500" in summary


def test_non_finite_loss_is_written_as_null(tmp_path):
    run(model=FixedModel(Y_PRED, loss=float("nan"))).save(tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["loss"] is None


def test_evaluates_the_chosen_split():
    metrics = run(stage=Evaluate(split="train"), model=FixedModel([0]))
    assert metrics.split == "train" and metrics.accuracy == 1.0


def test_label_the_model_cannot_predict():
    with pytest.raises(DataError, match="label 2 but the model predicts 2 classes"):
        run(model=FixedModel(Y_PRED % 2, classes=2))


def test_model_returning_the_wrong_number_of_rows():
    with pytest.raises(DataError, match=r"shape \(1, 3\) for 6 samples"):
        run(model=FixedModel([0]))


def test_missing_split():
    with pytest.raises(Exception, match="no split 'validation'"):
        run(stage=Evaluate(split="validation"))
