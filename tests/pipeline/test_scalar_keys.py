"""What run inspection shows of metrics.json and history.json: the scalars, in the files' order."""

from pipeline.runs.rundirs import scalar_keys


def test_scalar_keys_keep_first_seen_order_and_leave_tables_out():
    records = [{"split": "test", "accuracy": 0.9, "per_class": [{"f1": 1.0}], "loss": None},
               {"accuracy": 0.8, "confusion_matrix": [[1]], "n": 10, "flag": True}]
    assert scalar_keys(records) == ["split", "accuracy", "loss", "n", "flag"]
    assert scalar_keys([]) == []
